"""Noise models on the 0..255 scale: white Gaussian (the literature's benchmark) and
Poisson-Gaussian (what a camera sensor makes: shot noise that grows with the signal, plus
read noise)."""

from __future__ import annotations

import math

import numpy as np

from jsnet_edge.errors import OptionError


def add_gaussian_noise(
    img: np.ndarray,
    sigma: float,
    *,
    seed: int | None = 0,
    rng: np.random.Generator | None = None,
    clip: bool = False,
) -> np.ndarray:
    """Additive white Gaussian noise of std ``sigma`` on the 0..255 scale (denoising tasks).

    Seeded by default so evaluation sets are reproducible; pass ``rng`` (which then takes
    precedence over ``seed``) to draw fresh noise in training. Returns float32; the
    denoising benchmarks keep the noisy image unclipped, so ``clip`` is off by default.
    """
    s = float(sigma)
    if not math.isfinite(s) or s < 0.0:
        raise OptionError(f"noise sigma must be a non-negative number, got {sigma!r}")
    arr = np.asarray(img)
    if arr.dtype != np.uint8 and not np.issubdtype(arr.dtype, np.floating):
        raise OptionError(f"add_gaussian_noise needs a uint8 or float image, got {arr.dtype}")
    gen = rng if rng is not None else np.random.default_rng(seed)
    noisy = arr.astype(np.float64) + gen.normal(0.0, s, size=arr.shape)
    if clip:
        np.clip(noisy, 0.0, 255.0, out=noisy)
    return noisy.astype(np.float32)


def add_poisson_gaussian_noise(
    img: np.ndarray,
    gain: float,
    read_sigma: float,
    *,
    rng: np.random.Generator,
    clip: bool = True,
) -> np.ndarray:
    """Camera sensor noise: shot noise whose variance grows with the signal (Poisson, with
    `gain` grey levels per photo-electron: variance gain * x) plus signal-independent read
    noise of std `read_sigma`, both on the 0..255 scale; clipped to 0..255 like a camera's
    output by default. Returns float32."""
    if gain < 0 or read_sigma < 0:
        raise OptionError(f"noise gain and read sigma must be >= 0, got {gain}, {read_sigma}")
    x = np.asarray(img, dtype=np.float64)
    if gain > 0:
        x = rng.poisson(np.maximum(x, 0.0) / gain) * gain
    x = x + rng.normal(0.0, read_sigma, size=x.shape)
    if clip:
        np.clip(x, 0.0, 255.0, out=x)
    return x.astype(np.float32)
