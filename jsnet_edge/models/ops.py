"""Operation blocks: the candidates of the operation search module (OSM).

Each factory takes the operation width C and returns a module mapping C -> C channels at
the same resolution. Blocks know nothing of cells; `cell.py` composes them. Module and
parameter names follow the authors' code (`op1`, `op2`, `reduce`) so that their
checkpoints map onto ours without a renaming table.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def conv(
    cin: int, cout: int, k: int, *, dilation: int = 1, groups: int = 1, bias: bool = False
) -> nn.Conv2d:
    """Same-size convolution ("conv k" of the spec: stride 1, padding keeps H and W)."""
    return nn.Conv2d(
        cin, cout, k, padding=dilation * (k - 1) // 2, dilation=dilation, groups=groups, bias=bias
    )


class TwoStepBlock(nn.Module):
    """The wiring every non-trivial operation shares.

    x1 = op1(x); x2 = op2(concat(x, x1)); out = reduce(concat(x, x1, x2)) + x.
    The candidates differ only in what op1 and op2 are.
    """

    def __init__(self, c: int, op1: nn.Module, op2: nn.Module) -> None:
        super().__init__()
        self.op1 = op1
        self.op2 = op2
        self.reduce = nn.Conv2d(3 * c, c, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.op1(x)
        x2 = self.op2(torch.cat((x, x1), 1))
        return self.reduce(torch.cat((x, x1, x2), 1)) + x


class Identity(nn.Module):
    """`skip_connect`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """`none`: the edge contributes nothing (kept so the search space is complete)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def rb(c: int) -> nn.Module:
    """Residual block: two 3x3 convs per step."""
    return TwoStepBlock(
        c,
        nn.Sequential(conv(c, c, 3), nn.ReLU(inplace=True), conv(c, c, 3)),
        nn.Sequential(conv(2 * c, c, 3), nn.ReLU(inplace=True), conv(c, c, 3)),
    )


def lrb(c: int) -> nn.Module:
    """Light residual block: a 1x1 conv replaces the first 3x3 of each step."""
    return TwoStepBlock(
        c,
        nn.Sequential(conv(c, c, 1), nn.ReLU(inplace=True), conv(c, c, 3)),
        nn.Sequential(conv(2 * c, c, 1), nn.ReLU(inplace=True), conv(c, c, 3)),
    )


def srb(c: int) -> nn.Module:
    """Shallow residual block: a single 3x3 conv per step."""
    return TwoStepBlock(
        c,
        nn.Sequential(conv(c, c, 3), nn.ReLU(inplace=True)),
        nn.Sequential(conv(2 * c, c, 3), nn.ReLU(inplace=True)),
    )


def sep_conv_3x3(c: int) -> nn.Module:
    """Depthwise-separable steps: cheap in multiply-adds, not always in latency."""
    return TwoStepBlock(
        c,
        nn.Sequential(conv(c, c, 3, groups=c), conv(c, c, 1), nn.ReLU(inplace=True)),
        nn.Sequential(conv(2 * c, c, 3, groups=c), conv(c, c, 1), nn.ReLU(inplace=True)),
    )


def dil_conv_3x3(c: int) -> nn.Module:
    """Dilated depthwise steps: a wide receptive field for few multiply-adds."""
    return TwoStepBlock(
        c,
        nn.Sequential(
            conv(c, c, 3, dilation=2, groups=c),
            conv(c, c, 3, dilation=3, groups=c),
            conv(c, c, 1),
            nn.ReLU(inplace=True),
        ),
        nn.Sequential(
            conv(2 * c, c, 3, dilation=2, groups=c),
            conv(c, c, 3, dilation=3, groups=c),
            conv(c, c, 1),
            nn.ReLU(inplace=True),
        ),
    )


def skip_connect(c: int) -> nn.Module:
    return Identity()


def none(c: int) -> nn.Module:
    return Zero()


# The OSM search space, in the paper's order. Name -> factory(C).
OPS: dict[str, Callable[[int], nn.Module]] = {
    "none": none,
    "skip_connect": skip_connect,
    "sep_conv_3x3": sep_conv_3x3,
    "dil_conv_3x3": dil_conv_3x3,
    "rb": rb,
    "lrb": lrb,
    "srb": srb,
}
