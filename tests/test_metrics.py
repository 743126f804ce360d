"""PSNR/SSIM must reproduce the published protocol; scikit-image is the reference."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from skimage import color, data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from jsnet_edge.errors import OptionError
from jsnet_edge.metrics import psnr, rgb_to_y, ssim


def _degrade(img: np.ndarray, seed: int = 0) -> np.ndarray:
    """A plausibly restored photo: slightly blurred, noisy, uint8."""
    blurred = cv2.GaussianBlur(img, (5, 5), 1.0).astype(np.float64)
    noisy = blurred + np.random.default_rng(seed).normal(0.0, 4.0, img.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def color_pair() -> tuple[np.ndarray, np.ndarray]:
    hr = data.astronaut()
    return hr, _degrade(hr)


@pytest.fixture(scope="module")
def gray_pair() -> tuple[np.ndarray, np.ndarray]:
    hr = data.camera()
    return hr, _degrade(hr, seed=1)


def _crop(img: np.ndarray, s: int) -> np.ndarray:
    return img[s:-s, s:-s] if s else img


def _sk_ssim(x: np.ndarray, y: np.ndarray, channel_axis: int | None = None) -> float:
    return structural_similarity(
        x.astype(np.float64),
        y.astype(np.float64),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=channel_axis,
    )


# --- rgb_to_y ---------------------------------------------------------------------------


def test_rgb_to_y_known_values() -> None:
    px = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]])
    y = rgb_to_y(px.astype(np.uint8))
    assert y.dtype == np.float64
    np.testing.assert_allclose(
        y[0], [235.0, 16.0, 16 + 65.481, 16 + 128.553, 16 + 24.966], atol=1e-9
    )


def test_rgb_to_y_matches_skimage_rgb2ycbcr() -> None:
    img = data.coffee()
    ref = color.rgb2ycbcr(img)[..., 0]  # skimage scales uint8 to 0..1 then uses MATLAB's matrix
    np.testing.assert_allclose(rgb_to_y(img), ref, atol=1e-9)
    # float input on the 0..255 scale gives the same luma as uint8
    np.testing.assert_allclose(rgb_to_y(img.astype(np.float32)), ref, atol=1e-4)


def test_rgb_to_y_rejects_gray() -> None:
    with pytest.raises(OptionError):
        rgb_to_y(data.camera())


# --- PSNR -------------------------------------------------------------------------------


@pytest.mark.parametrize("shave", [0, 4])
def test_psnr_rgb_mode_matches_skimage(color_pair, shave: int) -> None:
    hr, sr = color_pair
    ref = peak_signal_noise_ratio(_crop(hr, shave), _crop(sr, shave), data_range=255)
    assert psnr(hr, sr, mode="rgb", shave=shave) == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("shave", [0, 3])
def test_psnr_gray_matches_skimage(gray_pair, shave: int) -> None:
    hr, sr = gray_pair
    ref = peak_signal_noise_ratio(_crop(hr, shave), _crop(sr, shave), data_range=255)
    # a gray image is measured as it is, whatever the mode
    assert psnr(hr, sr, shave=shave) == pytest.approx(ref, abs=1e-9)
    assert psnr(hr, sr, shave=shave, mode="rgb") == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("shave", [0, 2])
def test_psnr_y_mode_is_psnr_of_luma(color_pair, shave: int) -> None:
    hr, sr = color_pair
    y_hr, y_sr = _crop(rgb_to_y(hr), shave), _crop(rgb_to_y(sr), shave)
    ref = peak_signal_noise_ratio(y_hr, y_sr, data_range=255)
    got = psnr(hr, sr, shave=shave)
    assert got == pytest.approx(ref, abs=1e-9)
    # luma differs from all-channel PSNR: the mode really changes what is measured
    assert abs(got - psnr(hr, sr, shave=shave, mode="rgb")) > 0.05


def test_psnr_dtype_and_data_range_invariance(color_pair) -> None:
    hr, sr = color_pair
    ref = psnr(hr, sr)
    assert psnr(hr.astype(np.float32), sr.astype(np.float64)) == pytest.approx(ref, abs=1e-6)
    unit = psnr(hr / 255.0, sr / 255.0, data_range=1.0, mode="rgb")
    assert unit == pytest.approx(psnr(hr, sr, mode="rgb"), abs=1e-9)


def test_psnr_identical_is_inf(color_pair) -> None:
    hr, _ = color_pair
    assert psnr(hr, hr.copy()) == float("inf")
    assert psnr(hr, hr, mode="rgb", shave=4) == float("inf")


def test_psnr_shave_ignores_border(gray_pair) -> None:
    hr, _ = gray_pair
    damaged = hr.copy()
    damaged[:3] = 0
    damaged[:, -3:] = 255
    assert np.isfinite(psnr(hr, damaged))
    assert psnr(hr, damaged, shave=3) == float("inf")


def test_psnr_rejects_bad_input(color_pair) -> None:
    hr, sr = color_pair
    with pytest.raises(OptionError, match="same shape"):
        psnr(hr, sr[:-1])
    with pytest.raises(OptionError, match="mode"):
        psnr(hr, sr, mode="ycbcr")
    with pytest.raises(OptionError, match="shave"):
        psnr(hr, sr, shave=256)
    with pytest.raises(OptionError, match="shave"):
        psnr(hr, sr, shave=-1)


# --- SSIM -------------------------------------------------------------------------------


@pytest.mark.parametrize("shave", [0, 4])
def test_ssim_gray_matches_skimage(gray_pair, shave: int) -> None:
    hr, sr = gray_pair
    ref = _sk_ssim(_crop(hr, shave), _crop(sr, shave))
    assert ssim(hr, sr, shave=shave) == pytest.approx(ref, abs=1e-4)
    assert 0.3 < ref < 0.99  # a degradation that SSIM actually sees


@pytest.mark.parametrize("shave", [0, 3])
def test_ssim_y_mode_matches_skimage_on_luma(color_pair, shave: int) -> None:
    hr, sr = color_pair
    ref = _sk_ssim(_crop(rgb_to_y(hr), shave), _crop(rgb_to_y(sr), shave))
    assert ssim(hr, sr, shave=shave) == pytest.approx(ref, abs=1e-4)


@pytest.mark.parametrize("shave", [0, 2])
def test_ssim_rgb_mode_matches_skimage_channel_axis(color_pair, shave: int) -> None:
    hr, sr = color_pair
    ref = _sk_ssim(_crop(hr, shave), _crop(sr, shave), channel_axis=2)
    assert ssim(hr, sr, shave=shave, mode="rgb") == pytest.approx(ref, abs=1e-4)


def test_ssim_other_photo_and_float_input() -> None:
    hr = data.chelsea()
    sr = _degrade(hr, seed=3).astype(np.float32)
    ref = _sk_ssim(rgb_to_y(hr), rgb_to_y(sr))
    assert ssim(hr, sr) == pytest.approx(ref, abs=1e-4)


def test_ssim_identical_is_one(color_pair) -> None:
    hr, _ = color_pair
    assert ssim(hr, hr) == pytest.approx(1.0, abs=1e-12)
    assert ssim(hr, hr, mode="rgb") == pytest.approx(1.0, abs=1e-12)


def test_ssim_rejects_bad_input(color_pair) -> None:
    hr, sr = color_pair
    with pytest.raises(OptionError, match="same shape"):
        ssim(hr, sr[:, :-2])
    with pytest.raises(OptionError, match="mode"):
        ssim(hr, sr, mode="lab")
    with pytest.raises(OptionError, match="11x11"):
        ssim(hr[:20, :20], sr[:20, :20], shave=5)


def test_ssim_is_vectorised(gray_pair) -> None:
    # ~10 ms on one core; a generous bound that still catches a per-pixel Python loop.
    hr, sr = gray_pair
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        ssim(hr, sr)
        best = min(best, time.perf_counter() - t0)
    assert best < 0.5
