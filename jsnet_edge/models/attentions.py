"""Attention blocks: the candidates of the attention search module (ASM).

Each factory takes the feature width F and returns a module that maps F -> F channels and
returns x * mask for a mask it computes from x. Names of sub-modules follow the authors'
code where their checkpoints contain the block (`esab`, `cea`, the CA of the CSFM).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from jsnet_edge.models.fileinfo import ESAB_MIN_SIZE
from jsnet_edge.models.ops import Identity, Zero

REDUCTION = 8


def _reduced(width: int, r: int) -> int:
    # Narrow networks (F = 32) would otherwise reduce to zero channels.
    return max(1, width // r)


class PixelAttention(nn.Module):
    """PA: a per-pixel mask from a small 1x1 bottleneck."""

    def __init__(self, width: int, r: int = REDUCTION) -> None:
        super().__init__()
        m = _reduced(width, r)
        self.at = nn.Sequential(
            nn.Conv2d(width, m, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(m, 2, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(2, 1, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.at(x)


class ChannelAttention(nn.Module):
    """CA (squeeze and excitation). Indices of `at` match the authors' (`at.1`, `at.3`)."""

    def __init__(self, width: int, r: int = REDUCTION) -> None:
        super().__init__()
        m = _reduced(width, r)
        self.at = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(width, m, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(m, width, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.at(x)


class ContrastChannelAttention(nn.Module):
    """CCA (IMDN): channel statistics are std + mean instead of the mean alone."""

    def __init__(self, width: int, r: int = REDUCTION) -> None:
        super().__init__()
        m = _reduced(width, r)
        self.at = nn.Sequential(
            nn.Conv2d(width, m, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(m, width, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        # The epsilon keeps the gradient finite for a constant channel (a dead ReLU gives
        # one), where sqrt's derivative at 0 would turn the whole network into NaN.
        std = ((x - mean).pow(2).mean(dim=(2, 3), keepdim=True) + 1e-6).sqrt()
        return x * self.at(std + mean)


class SpatialAttention(nn.Module):
    """SA (CBAM): a 5x5 conv over the channel max and channel mean."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 5, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = torch.cat((x.amax(1, keepdim=True), x.mean(1, keepdim=True)), 1)
        return x * torch.sigmoid(self.conv(stats))


class SpatialAttentionV2(nn.Module):
    """SA-v2 (BAM's spatial branch): dilated 3x3 convs on a reduced width."""

    def __init__(self, width: int, r: int = REDUCTION) -> None:
        super().__init__()
        m = _reduced(width, r)
        self.at = nn.Sequential(
            nn.Conv2d(width, m, 1),
            nn.Conv2d(m, m, 3, padding=4, dilation=4),
            nn.ReLU(inplace=True),
            nn.Conv2d(m, m, 3, padding=4, dilation=4),
            nn.ReLU(inplace=True),
            nn.Conv2d(m, 1, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.at(x)


class ESAB(nn.Module):
    """Enhanced spatial attention (RFANet/RFDN): a large receptive field from a strided
    conv and a 7x7 max-pool, cheap because it works at a fraction of the resolution.

    Its strided conv and pool need inputs of at least `MIN_SIZE` pixels per side.
    """

    MIN_SIZE = ESAB_MIN_SIZE

    def __init__(self, width: int, r: int = REDUCTION) -> None:
        super().__init__()
        f = _reduced(width, r)
        self.conv1 = nn.Conv2d(width, f, 1)
        self.conv_f = nn.Conv2d(f, f, 1)
        self.conv_max = nn.Conv2d(f, f, 3, padding=1)
        self.conv2 = nn.Conv2d(f, f, 3, stride=2, padding=0)
        self.conv3 = nn.Conv2d(f, f, 3, padding=1)
        self.conv3_ = nn.Conv2d(f, f, 3, padding=1)
        self.conv4 = nn.Conv2d(f, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv1(x)
        b = F.max_pool2d(self.conv2(a), kernel_size=7, stride=3)
        b = F.relu(self.conv_max(b))
        b = F.relu(self.conv3(b))
        b = self.conv3_(b)
        b = F.interpolate(b, size=x.shape[2:], mode="bilinear", align_corners=False)
        return x * torch.sigmoid(self.conv4(b + self.conv_f(a)))


class CEA(nn.Module):
    """Contrast-enhanced attention: a 1x1 reduction, then a grouped 3x3 back to F."""

    def __init__(self, width: int, r: int = REDUCTION) -> None:
        super().__init__()
        m = _reduced(width, r)
        self.at = nn.Sequential(
            nn.Conv2d(width, m, 1),
            nn.Conv2d(m, width, 3, padding=1, groups=m, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.at(x)


# The ASM search space, in the paper's order. Name -> factory(F).
ATTENTIONS: dict[str, Callable[[int], nn.Module]] = {
    "none": lambda width: Zero(),
    "skip_connect": lambda width: Identity(),
    "pixel_wise_attention": PixelAttention,
    "channel_wise_attention": ChannelAttention,
    "contrast_aware_channel_attention": ContrastChannelAttention,
    "spatial_attention": SpatialAttention,
    "spatial_attention_v2": SpatialAttentionV2,
    "esab": ESAB,
    "cea": CEA,
}
