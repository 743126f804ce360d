"""PSNR and SSIM as the image-restoration literature reports them.

This is the project's only implementation of both: evaluation, training-time validation
and the benchmarks all call it, so that every number we print is comparable with the
published tables. The protocol is the usual super-resolution one: luma of the
"studio swing" YCbCr of MATLAB's ``rgb2ycbcr``, a border of ``shave`` pixels (the scale
factor) left out, SSIM with an 11x11 Gaussian window (sigma 1.5) over the 'valid' region.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from jsnet_edge.errors import OptionError

__all__ = ["default_mode", "psnr", "rgb_to_y", "score", "ssim", "to_levels"]

_MODES = ("y", "rgb")

# Wang et al. 2004 constants and window.
_K1 = 0.01
_K2 = 0.03
_WIN_SIGMA = 1.5
_WIN_RADIUS = 5  # 11x11 window, as MATLAB's fspecial('gaussian', 11, 1.5)


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Luma of MATLAB's ``rgb2ycbcr`` (BT.601, studio swing 16..235) on the 0..255 scale.

    Published SR results are measured on this channel, not on full-range luma.
    """
    arr = np.asarray(img)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise OptionError(f"rgb_to_y needs an HxWx3 RGB image, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    return 16.0 + (65.481 * arr[..., 0] + 128.553 * arr[..., 1] + 24.966 * arr[..., 2]) / 255.0


def _prepare(a: np.ndarray, b: np.ndarray, shave: int, mode: str, what: str) -> np.ndarray:
    """Validate the pair and return it as one float64 array of shape (2, H, W, C)."""
    if mode not in _MODES:
        raise OptionError(f"unknown {what} mode {mode!r}; choose from {', '.join(_MODES)}")
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise OptionError(f"{what} needs two images of the same shape, got {a.shape} and {b.shape}")
    if a.ndim not in (2, 3):
        raise OptionError(f"{what} needs HxW or HxWxC images, got shape {a.shape}")
    if isinstance(shave, bool) or not isinstance(shave, (int, np.integer)) or shave < 0:
        raise OptionError(f"shave must be a non-negative integer, got {shave!r}")
    h, w = a.shape[:2]
    if 2 * shave >= h or 2 * shave >= w:
        raise OptionError(f"shave={shave} leaves nothing of a {h}x{w} image")
    pair = np.stack([a.astype(np.float64, copy=False), b.astype(np.float64, copy=False)])
    if pair.ndim == 3:
        pair = pair[..., None]
    if mode == "y":
        channels = pair.shape[-1]
        if channels == 3:
            pair = rgb_to_y(pair.reshape(-1, w, 3)).reshape(2, h, w, 1)
        elif channels != 1:
            raise OptionError(
                f"{what} mode 'y' needs gray or RGB images, got {channels} channels; use mode='rgb'"
            )
    if shave:
        pair = pair[:, shave:-shave, shave:-shave]
    return pair


def psnr(
    a: np.ndarray,
    b: np.ndarray,
    *,
    shave: int = 0,
    mode: str = "y",
    data_range: float = 255.0,
) -> float:
    """Peak signal-to-noise ratio in dB, by the SR evaluation protocol (see module doc).

    ``mode="rgb"`` takes the MSE over all channels. Identical images give ``inf``.
    """
    pair = _prepare(a, b, shave, mode, "psnr")
    mse = float(np.mean((pair[0] - pair[1]) ** 2))
    if mse == 0.0:
        return float("inf")
    return 10.0 * math.log10(float(data_range) ** 2 / mse)


def _gaussian_window() -> np.ndarray:
    x = np.arange(-_WIN_RADIUS, _WIN_RADIUS + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / _WIN_SIGMA) ** 2)
    return g / g.sum()


def _ssim_2d(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    g = _gaussian_window()
    r = _WIN_RADIUS

    def blur(img: np.ndarray) -> np.ndarray:
        # Border type is irrelevant: the border the window overhangs is cropped away.
        out = cv2.sepFilter2D(img, cv2.CV_64F, g, g, borderType=cv2.BORDER_REFLECT)
        return out[r:-r, r:-r]

    mu_x, mu_y = blur(x), blur(y)
    # Population (1/N-weighted) moments, as in the original paper's code.
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    c1 = (_K1 * data_range) ** 2
    c2 = (_K2 * data_range) ** 2
    num = (2.0 * mu_x * mu_y + c1) * (2.0 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return float(np.mean(num / den))


def ssim(
    a: np.ndarray,
    b: np.ndarray,
    *,
    shave: int = 0,
    mode: str = "y",
    data_range: float = 255.0,
) -> float:
    """Structural similarity (Wang et al. 2004), by the SR evaluation protocol.

    Gaussian 11x11 window with sigma 1.5, K1=0.01, K2=0.03, population covariance,
    averaged over the 'valid' region only, as MATLAB's reference ``ssim_index`` does.
    ``mode="rgb"`` averages the per-channel SSIMs.
    """
    pair = _prepare(a, b, shave, mode, "ssim")
    h, w = pair.shape[1:3]
    side = 2 * _WIN_RADIUS + 1
    if h < side or w < side:
        raise OptionError(f"ssim needs at least {side}x{side} pixels after shaving, got {h}x{w}")
    values = [
        _ssim_2d(
            np.ascontiguousarray(pair[0, ..., c]),
            np.ascontiguousarray(pair[1, ..., c]),
            float(data_range),
        )
        for c in range(pair.shape[-1])
    ]
    return float(np.mean(values))


def default_mode(scale: int, colors: int) -> str:
    """The literature's choice: luma for SR (and gray images), all RGB channels otherwise."""
    return "y" if scale > 1 or colors == 1 else "rgb"


def to_levels(img: np.ndarray) -> np.ndarray:
    """A network output on 0..255 as the integer levels an 8-bit image would store."""
    return np.floor(np.clip(img, 0.0, 255.0) + 0.5)


def score(
    restored: np.ndarray,
    target: np.ndarray,
    *,
    scale: int,
    mode: str | None = None,
    rounded: bool = True,
    with_ssim: bool = False,
) -> float | tuple[float, float]:
    """PSNR (and SSIM) of a restored image against its clean target, by the protocol every
    number jsnet-edge prints uses: `restored` rounded to 8-bit levels (a float output would
    otherwise score what no saved image holds), a border of `scale` pixels left out for
    SR, luma for SR and gray, RGB otherwise (`default_mode`). HxW, HxWx1 and HxWx3 images
    on the 0..255 scale."""
    a, b = np.asarray(restored), np.asarray(target)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if b.ndim == 3 and b.shape[2] == 1:
        b = b[:, :, 0]
    if rounded and not np.issubdtype(a.dtype, np.integer):
        a = to_levels(a)
    mode = mode or default_mode(scale, 1 if a.ndim == 2 else a.shape[2])
    shave = scale if scale > 1 else 0
    p = psnr(a, b, shave=shave, mode=mode)
    return (p, ssim(a, b, shave=shave, mode=mode)) if with_ssim else p
