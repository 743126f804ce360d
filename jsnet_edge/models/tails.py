"""Reconstruction tails: pixel-shuffle upsamplers for SR, a residual head for x1 tasks."""

from __future__ import annotations

from torch import nn


def shuffle_steps(scale: int) -> list[int]:
    """Factors of 2 first, then 3 (x4 = 2 x 2, as the authors; x6 = 2 x 3; x8 = 2 x 2 x 2)."""
    steps, rest = [], scale
    for f in (2, 3):
        while rest % f == 0 and rest > 1:
            steps.append(f)
            rest //= f
    if rest != 1:
        raise ValueError(f"upsampling factor {scale} is not a product of 2s and 3s")
    return steps


def upsampler(width: int, colors: int, scale: int) -> nn.Sequential:
    """conv3 -> pixel shuffle (once for x2/x3, twice by 2 for x4) -> conv3 to colours.

    Layer indices match the authors' `up.0`, `up.2` (and `up.4` for x4). A network with
    unshuffle s asks for scale x s.
    """
    layers: list[nn.Module] = []
    steps = shuffle_steps(scale)
    for s in steps:
        layers += [nn.Conv2d(width, s * s * width, 3, padding=1), nn.PixelShuffle(s)]
    layers.append(nn.Conv2d(width, colors, 3, padding=1))
    return nn.Sequential(*layers)


def residual_tail(width: int, colors: int, unshuffle: int = 1) -> nn.Sequential:
    """x1 tasks (denoising, JPEG): predicts the residual that is added to the input (at
    full resolution: shuffled back when the body ran unshuffled). The first layer is the
    convolution that starts at zero."""
    s = unshuffle
    if s == 1:
        return nn.Sequential(nn.Conv2d(width, colors, 3, padding=1))
    return nn.Sequential(nn.Conv2d(width, colors * s * s, 3, padding=1), nn.PixelShuffle(s))
