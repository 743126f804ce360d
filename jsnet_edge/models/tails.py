"""Reconstruction tails: pixel-shuffle upsamplers for SR, a residual head for x1 tasks."""

from __future__ import annotations

from torch import nn


def upsampler(width: int, colors: int, scale: int) -> nn.Sequential:
    """conv3 -> pixel shuffle (once for x2/x3, twice by 2 for x4) -> conv3 to colours.

    Layer indices match the authors' `up.0`, `up.2` (and `up.4` for x4).
    """
    layers: list[nn.Module] = []
    steps = [2, 2] if scale == 4 else [scale]
    for s in steps:
        layers += [nn.Conv2d(width, s * s * width, 3, padding=1), nn.PixelShuffle(s)]
    layers.append(nn.Conv2d(width, colors, 3, padding=1))
    return nn.Sequential(*layers)


def residual_tail(width: int, colors: int) -> nn.Sequential:
    """x1 tasks (denoising, JPEG): predicts the residual that is added to the input."""
    return nn.Sequential(nn.Conv2d(width, colors, 3, padding=1))
