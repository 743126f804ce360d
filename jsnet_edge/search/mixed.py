"""Mixed edges and width masks: the pieces the supernet is made of.

Widths are searched FBNetV2-style on one max-width supernet: for every convolution whose
output width depends on the width choice, a forward hook multiplies its output by the
expected channel mask sum_w softmax(alpha_width)_w * mask_w, where mask_w keeps the
channels that the same block built at width w has. Which channels those are is read off
the blocks themselves (each block is also built at every width, on the meta device), so
operations, attentions, the CSFM and the tails need no width-specific code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import nn

from jsnet_edge.models.attentions import ATTENTIONS
from jsnet_edge.models.ops import OPS
from jsnet_edge.search.space import ATT_NAMES, OP_NAMES


class MaskBank(nn.Module):
    """Holds the 0/1 prefix masks of every width profile and, during a forward pass, their
    expectation under the current width probabilities.

    A profile is the tuple of a convolution's output channels at each width choice; the
    supernet's convolution has the largest. Call `set(p_width)` before each forward pass.
    """

    def __init__(self, widths: Sequence[int]) -> None:
        super().__init__()
        self.widths = tuple(widths)
        self.profiles: dict[tuple[int, ...], str] = {}
        self.current: dict[str, torch.Tensor] = {}

    def _buffer(self, profile: tuple[int, ...]) -> str:
        if profile not in self.profiles:
            name = f"mask_{len(self.profiles)}"
            masks = torch.zeros(len(profile), max(profile))
            for i, n in enumerate(profile):
                masks[i, :n] = 1.0
            self.register_buffer(name, masks, persistent=False)
            self.profiles[profile] = name
        return self.profiles[profile]

    def attach(self, module: nn.Module, build: Callable[[int], nn.Module]) -> int:
        """Mask every width-dependent conv of `module` (built at the largest width);
        `build(w)` makes the same block at width choice w. Returns how many were masked."""
        with torch.device("meta"):
            narrow = [dict(build(w).named_modules()) for w in self.widths]
        count = 0
        for name, conv in module.named_modules():
            if not isinstance(conv, nn.Conv2d):
                continue
            profile = tuple(int(n[name].out_channels) for n in narrow)
            if profile[-1] != conv.out_channels:
                raise AssertionError(f"{name}: the supernet block is not the widest one")
            if len(set(profile)) == 1:
                continue
            conv.register_forward_hook(partial(self._mask_output, self._buffer(profile)))
            count += 1
        return count

    def set(self, p_width: torch.Tensor) -> None:
        self.current = {name: p_width @ getattr(self, name) for name in self.profiles.values()}

    def _mask_output(
        self, name: str, module: nn.Module, inputs, output: torch.Tensor
    ) -> torch.Tensor:
        return output * self.current[name].view(1, -1, 1, 1).to(output.dtype)


class MixedOp(nn.Module):
    """A weighted sum of the 7 operation candidates on 1/k of the channels (PC-DARTS).

    The channels that go through the candidates are the interleaved slice offset, offset+k,
    offset+2k ... and the others bypass unchanged; with a different offset per edge this is
    the result of PC-DARTS' channel shuffle (which interleaves the processed channels with
    the bypassed ones), written so that the first w channels of the input map onto the first
    w/k channels of the slice: the width masks stay valid inside the candidates, which a
    plain shuffle would break (it moves active channels to masked positions).
    """

    def __init__(self, width: int, partial_k: int, offset: int, bank: MaskBank) -> None:
        super().__init__()
        self.k, self.offset = partial_k, offset % partial_k
        sub = width // partial_k
        self.candidates = nn.ModuleList()
        for name in OP_NAMES:
            op = OPS[name](sub)
            bank.attach(op, lambda w, name=name: OPS[name](w // partial_k))
            self.candidates.append(op)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if self.k == 1:
            return sum(w * op(x) for w, op in zip(weights, self.candidates, strict=True))
        n, c, h, wd = x.shape
        x5 = x.view(n, c // self.k, self.k, h, wd)
        sub = x5[:, :, self.offset]
        y = sum(w * op(sub) for w, op in zip(weights, self.candidates, strict=True))
        parts = [y if j == self.offset else x5[:, :, j] for j in range(self.k)]
        return torch.stack(parts, 2).view(n, c, h, wd)


class MixedAttention(nn.Module):
    """A weighted sum of the 9 attention candidates at the full feature width."""

    def __init__(self, features: int, bank: MaskBank) -> None:
        super().__init__()
        self.candidates = nn.ModuleList()
        for name in ATT_NAMES:
            att = ATTENTIONS[name](features)
            bank.attach(att, lambda w, name=name: ATTENTIONS[name](4 * w))
            self.candidates.append(att)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * att(x) for w, att in zip(weights, self.candidates, strict=True))
