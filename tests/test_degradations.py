"""The degradations must be the ones the benchmarks use (MATLAB bicubic above all)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data

from jsnet_edge.degradations import (
    add_gaussian_noise,
    bicubic_downscale,
    imresize,
    jpeg_compress,
    modcrop,
)
from jsnet_edge.errors import OptionError
from jsnet_edge.metrics import psnr

# --- a slow, direct reference of MATLAB's imresize(img, scale, 'bicubic') ----------------
# Written straight from MATLAB's algorithm (imresize.m: contributions + resizeAlongDim), one
# output pixel at a time, with MATLAB's 1-based indices, so that it shares no code and no
# index arithmetic with the vectorised implementation.


def _ref_cubic(t: float) -> float:
    a = abs(t)
    if a <= 1.0:
        return 1.5 * a**3 - 2.5 * a**2 + 1.0
    if a <= 2.0:
        return -0.5 * a**3 + 2.5 * a**2 - 4.0 * a + 2.0
    return 0.0


def _ref_mirror(j: int, n: int) -> int:
    """MATLAB's aux = [1:n, n:-1:1] lookup, as repeated reflections (1-based)."""
    while j < 1 or j > n:
        j = 1 - j if j < 1 else 2 * n + 1 - j
    return j


def _ref_resize_dim(img: np.ndarray, dim: int, out_len: int, scale: float) -> np.ndarray:
    n = img.shape[dim]
    kernel_width = 4.0 / scale if scale < 1 else 4.0
    taps = math.ceil(kernel_width) + 2
    out_shape = list(img.shape)
    out_shape[dim] = out_len
    out = np.zeros(out_shape)
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - kernel_width / 2)
        ws, js = [], []
        for k in range(taps):
            j = left + k
            d = u - j
            ws.append(scale * _ref_cubic(scale * d) if scale < 1 else _ref_cubic(d))
            js.append(_ref_mirror(j, n))
        total = sum(ws)
        for w, j in zip(ws, js, strict=True):
            if dim == 0:
                out[x - 1] += (w / total) * img[j - 1]
            else:
                out[:, x - 1] += (w / total) * img[:, j - 1]
    return out


def _ref_imresize(img: np.ndarray, scale=None, size=None) -> np.ndarray:
    h, w = img.shape[:2]
    if scale is not None:
        scales = [scale, scale]
        out = [math.ceil(h * scale), math.ceil(w * scale)]
    else:
        out = list(size)
        scales = [out[0] / h, out[1] / w]
    is_uint8 = img.dtype == np.uint8
    x = img.astype(np.float64)
    order = [0, 1] if scales[0] <= scales[1] else [1, 0]
    for dim in order:
        x = _ref_resize_dim(x, dim, out[dim], scales[dim])
        if is_uint8:  # MATLAB's uint8 path returns uint8 after each 1-D pass
            x = np.clip(np.where(x >= 0, np.floor(x + 0.5), np.ceil(x - 0.5)), 0, 255)
    return x.astype(np.uint8) if is_uint8 else x


@pytest.fixture(scope="module")
def small_rgb() -> np.ndarray:
    # 20x17 patch of the astronaut with edges and texture, odd width on purpose
    return data.astronaut()[180:200, 230:247]


@pytest.fixture(scope="module")
def small_gray() -> np.ndarray:
    return data.camera()[100:120, 200:217]


SCALE_CASES = [
    {"scale": 1 / 2},
    {"scale": 1 / 3},
    {"scale": 1 / 4},
    {"scale": 2},
    {"scale": 3},
    {"scale": 0.7},
    {"size": (7, 40)},  # rows shrink, columns grow: rows resized first
    {"size": (45, 5)},  # columns shrink more: columns resized first
]


@pytest.mark.parametrize("case", SCALE_CASES, ids=str)
def test_imresize_matches_loop_reference_float(small_rgb, small_gray, case) -> None:
    # On the 0..1 scale so that the float32 result can resolve 1e-6 (float32 has only
    # ~1.5e-5 resolution near 255).
    for img in (small_rgb, small_gray):
        x = img.astype(np.float64) / 255.0
        got = imresize(x, case.get("scale"), size=case.get("size"))
        ref = _ref_imresize(x, case.get("scale"), case.get("size"))
        assert got.dtype == np.float32
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("case", SCALE_CASES, ids=str)
def test_imresize_matches_loop_reference_uint8(small_rgb, small_gray, case) -> None:
    for img in (small_rgb, small_gray):
        got = imresize(img, case.get("scale"), size=case.get("size"))
        ref = _ref_imresize(img, case.get("scale"), case.get("size"))
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, ref)


def test_imresize_float32_input_gives_float32_unclipped() -> None:
    # cubic overshoot at a hard edge is kept for float (as MATLAB does for double)
    img = np.zeros((16, 16), np.float32)
    img[:, 8:] = 255.0
    up = imresize(img, 2)
    assert up.dtype == np.float32
    assert up.max() > 255.0 and up.min() < 0.0
    up8 = imresize(img.astype(np.uint8), 2)
    assert up8.max() == 255 and up8.min() == 0


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 0.37, 2, 3, 4])
def test_imresize_constant_stays_constant(scale: float) -> None:
    f = np.full((23, 18, 3), 0.4, np.float64)
    np.testing.assert_allclose(imresize(f, scale), 0.4, atol=1e-6)
    u = np.full((23, 18), 77, np.uint8)
    assert np.all(imresize(u, scale) == 77)


def test_imresize_output_shapes_follow_matlab_ceil() -> None:
    img = np.zeros((20, 17, 3), np.uint8)
    assert imresize(img, 1 / 2).shape == (10, 9, 3)
    assert imresize(img, 1 / 3).shape == (7, 6, 3)
    assert imresize(img, 1 / 4).shape == (5, 5, 3)
    assert imresize(img, 3).shape == (60, 51, 3)
    assert imresize(img, 4).shape == (80, 68, 3)
    assert imresize(img[..., 0], 0.7).shape == (14, 12)
    assert imresize(data.astronaut(), 1 / 3).shape == (171, 171, 3)
    assert imresize(img, size=(33, 8)).shape == (33, 8, 3)


def test_imresize_size_equals_scale_when_consistent() -> None:
    img = data.coffee()  # 400x600
    np.testing.assert_array_equal(imresize(img, size=(200, 300)), imresize(img, 0.5))
    np.testing.assert_array_equal(imresize(img, size=(1200, 1800)), imresize(img, 3))


def test_imresize_x4_roundtrip_is_close_on_photo() -> None:
    hr = modcrop(data.camera(), 4)
    lr = imresize(hr, 1 / 4)
    assert lr.shape == (128, 128) and lr.dtype == np.uint8
    back = imresize(lr, 4)
    assert back.shape == hr.shape
    # bicubic x4 on the cameraman is ~23-26 dB; garbage would be far lower
    assert psnr(hr, back, shave=4) > 22.0


def _torch_resize(img: np.ndarray, out_hw: tuple[int, int], antialias: bool) -> np.ndarray:
    t = torch.from_numpy(img.astype(np.float64)).permute(2, 0, 1)[None]
    out = F.interpolate(t, size=out_hw, mode="bicubic", antialias=antialias, align_corners=False)
    return out[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("scale", [2, 4])
def test_imresize_downscale_interior_matches_torch_antialias(scale: int) -> None:
    # torch's antialiased bicubic is the PIL-style filter: a = -0.5, support stretched by
    # the scale, same pixel-centre mapping as MATLAB. It differs only at the border, where
    # it truncates and renormalises the kernel instead of mirroring the image, and in
    # computing its weights in float32: interior differences are ~1.5e-5 on the 0..255
    # scale (float32 rounding of the weights), so 1e-4 is the honest tolerance.
    hr = data.astronaut().astype(np.float64)
    ours = imresize(hr, 1 / scale).astype(np.float64)
    theirs = _torch_resize(hr, ours.shape[:2], antialias=True)
    m = 3  # output pixels whose taps (2*scale input pixels each side) stay inside
    np.testing.assert_allclose(ours[m:-m, m:-m], theirs[m:-m, m:-m], atol=1e-4, rtol=0)
    # ...and the borders do differ (mirror vs truncated kernel), which is why we crop
    assert np.abs(ours - theirs).max() > 0.5


def test_imresize_upscale_interior_matches_torch_antialias_not_plain_bicubic() -> None:
    # Upscaling: torch's antialias path still uses a = -0.5 and matches MATLAB inside;
    # torch's plain bicubic uses a = -0.75 and is visibly different (several grey levels
    # at edges), so it is not a valid MATLAB reference.
    hr = data.astronaut()[100:228, 150:278].astype(np.float64)
    ours = imresize(hr, 2).astype(np.float64)
    m = 4
    aa = _torch_resize(hr, ours.shape[:2], antialias=True)
    np.testing.assert_allclose(ours[m:-m, m:-m], aa[m:-m, m:-m], atol=1e-4, rtol=0)
    plain = _torch_resize(hr, ours.shape[:2], antialias=False)
    assert np.abs(ours - plain)[m:-m, m:-m].max() > 2.0


def _uint8_vs_rounded_float(img: np.ndarray) -> np.ndarray:
    u8 = imresize(img, 1 / 3).astype(np.int16)
    f = np.clip(np.floor(imresize(img.astype(np.float64), 1 / 3) + 0.5), 0, 255)
    return np.abs(u8 - f)


def test_imresize_uint8_close_to_float_path() -> None:
    # uint8 is rounded and clipped after each pass (MATLAB), so it is not "the float
    # result rounded once". Away from saturation it differs by at most one grey level;
    # where the first pass overshoots 0..255 the intermediate clip shifts a few pixels more.
    img = data.coffee()
    mid = np.rint(20 + 0.8 * img).astype(np.uint8)  # 20..224: no intermediate clipping
    assert _uint8_vs_rounded_float(mid).max() <= 1
    full = _uint8_vs_rounded_float(img)
    assert 1 < full.max() <= 8 and np.mean(full > 1) < 1e-3


def test_imresize_rejects_bad_arguments() -> None:
    img = data.camera()[:32, :32]
    with pytest.raises(OptionError):
        imresize(img)
    with pytest.raises(OptionError):
        imresize(img, 0.5, size=(16, 16))
    with pytest.raises(OptionError):
        imresize(img, -2)
    with pytest.raises(OptionError):
        imresize(img, size=(0, 16))
    with pytest.raises(OptionError):
        imresize(img.astype(np.int32), 0.5)


# --- modcrop / bicubic_downscale ---------------------------------------------------------


def test_modcrop_keeps_top_left() -> None:
    img = data.astronaut()[:511, :509]
    out = modcrop(img, 4)
    assert out.shape == (508, 508, 3)
    np.testing.assert_array_equal(out, img[:508, :508])
    assert modcrop(data.camera(), 3).shape == (510, 510)
    with pytest.raises(OptionError):
        modcrop(img, 0)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_downscale(scale: int) -> None:
    hr = data.chelsea()  # 300x451: not a multiple of 2 or 4
    lr = bicubic_downscale(hr, scale)
    assert lr.dtype == np.uint8
    assert lr.shape == (300 // scale, 451 // scale, 3)
    np.testing.assert_array_equal(lr, imresize(modcrop(hr, scale), 1 / scale))


# --- Gaussian noise ----------------------------------------------------------------------


def test_noise_is_seeded_and_reproducible() -> None:
    img = data.camera()
    a = add_gaussian_noise(img, 25, seed=7)
    assert a.dtype == np.float32 and a.shape == img.shape
    np.testing.assert_array_equal(a, add_gaussian_noise(img, 25, seed=7))
    assert not np.array_equal(a, add_gaussian_noise(img, 25, seed=8))
    r1 = add_gaussian_noise(img, 25, rng=np.random.default_rng(3))
    r2 = add_gaussian_noise(img, 25, rng=np.random.default_rng(3), seed=99)  # rng wins
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(r1, add_gaussian_noise(img, 25, seed=3))


@pytest.mark.parametrize("sigma", [15.0, 50.0])
def test_noise_statistics_on_photo(sigma: float) -> None:
    img = data.astronaut()
    noise = add_gaussian_noise(img, sigma).astype(np.float64) - img
    # 786k samples: the sample std is within ~0.1% of sigma; 1% is safe
    assert noise.std() == pytest.approx(sigma, rel=0.01)
    assert abs(noise.mean()) < 0.01 * sigma


def test_noise_clip() -> None:
    img = data.astronaut()  # has near-black and near-white pixels
    free = add_gaussian_noise(img, 50)
    assert free.min() < 0.0 and free.max() > 255.0
    clipped = add_gaussian_noise(img, 50, clip=True)
    assert clipped.min() >= 0.0 and clipped.max() <= 255.0
    np.testing.assert_array_equal(clipped, np.clip(free, 0, 255))
    np.testing.assert_array_equal(add_gaussian_noise(img, 0), img.astype(np.float32))
    with pytest.raises(OptionError):
        add_gaussian_noise(img, -1)


# --- JPEG --------------------------------------------------------------------------------


def test_jpeg_shape_and_dtype() -> None:
    for img in (data.astronaut(), data.camera()):
        out = jpeg_compress(img, 50)
        assert out.shape == img.shape and out.dtype == np.uint8
        assert not np.array_equal(out, img)


def test_jpeg_quality_orders_psnr() -> None:
    img = data.coffee()
    p10, p40, p90 = (psnr(img, jpeg_compress(img, q)) for q in (10, 40, 90))
    assert p10 < p40 < p90
    assert p90 > 35.0 and p10 < 33.0


def test_jpeg_color_order() -> None:
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 0] = 255
    out = jpeg_compress(red, 75).astype(int)
    assert out[..., 0].min() > 240 and out[..., 1:].max() < 15
    img = data.chelsea()
    # same as driving OpenCV by hand with BGR
    ok, buf = cv2.imencode(".jpg", img[..., ::-1].copy(), [cv2.IMWRITE_JPEG_QUALITY, 30])
    assert ok
    by_hand = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    np.testing.assert_array_equal(jpeg_compress(img, 30), by_hand)
    np.testing.assert_array_equal(
        jpeg_compress(img[..., ::-1].copy(), 30, color_order="bgr"), by_hand[..., ::-1]
    )
    # the order matters: JPEG's luma/chroma split treats R and B differently
    assert not np.array_equal(jpeg_compress(img, 30, color_order="bgr"), by_hand)


def test_jpeg_rejects_bad_arguments() -> None:
    img = data.camera()[:64, :64]
    for q in (0, 101, -5):
        with pytest.raises(OptionError):
            jpeg_compress(img, q)
    with pytest.raises(OptionError):
        jpeg_compress(img.astype(np.float32), 50)
    with pytest.raises(OptionError):
        jpeg_compress(data.astronaut(), 50, color_order="yuv")
