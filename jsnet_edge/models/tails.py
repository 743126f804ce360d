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


def shuffle_tail(width: int, colors: int, factor: int) -> nn.Sequential:
    """One conv to colours x factor^2 channels, then one pixel shuffle (as ESPCN and the
    mobile SR networks do): the tail of unshuffled networks. Two-stage upsamplers would run
    their wide convolutions at the output resolution, which costs more than the whole body
    of a real-time network."""
    return nn.Sequential(
        nn.Conv2d(width, colors * factor * factor, 3, padding=1), nn.PixelShuffle(factor)
    )


def make_tail(width: int, colors: int, scale: int, unshuffle: int = 1) -> nn.Sequential:
    """The tail for a task's scale: the paper's (upsampler, or the x1 residual) when the
    body runs at the input resolution, `shuffle_tail` back to the output resolution when it
    ran unshuffled. Its first layer is a convolution (x1 tails start it at zero)."""
    if unshuffle == 1:
        return upsampler(width, colors, scale) if scale > 1 else residual_tail(width, colors)
    return shuffle_tail(width, colors, scale * unshuffle)
