"""The degradations that make the low-quality inputs, for training, evaluation and
calibration alike: one definition (`Degradation`, `degrade`), so that what a model is
trained on, measured on and calibrated on cannot drift apart.

Published SR results use LR images made by MATLAB's ``imresize(hr, 1/s, 'bicubic')``;
other resizers (OpenCV, PIL, torch without care) give different LR images and PSNRs that
are not comparable. So ``imresize`` here re-implements MATLAB's algorithm, and training
uses the same functions as evaluation so that the network learns the degradation it is
tested on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from jsnet_edge.camera import camera_degrade, camera_degrade_clip
from jsnet_edge.errors import OptionError
from jsnet_edge.noise import add_gaussian_noise, add_poisson_gaussian_noise
from jsnet_edge.tasks import check_task, task_scale

__all__ = [
    "add_poisson_gaussian_noise",
    "DEFAULT_QUALITY",
    "DEFAULT_SIGMA",
    "Degradation",
    "add_gaussian_noise",
    "baseline",
    "bicubic_downscale",
    "degrade",
    "imresize",
    "jpeg_compress",
    "modcrop",
]

DEFAULT_SIGMA = 25.0
DEFAULT_QUALITY = 10
NOISES = ("gaussian", "camera")

# Output rows per block when applying a weight matrix; each block only multiplies the
# band of input rows its weights touch, so the cost is linear in the image size.
_BLOCK_ROWS = 32


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5, as MATLAB's ``imresize`` uses."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1.0)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1.0) & (ax <= 2.0))
    return near + far


def _weight_matrix(in_len: int, out_len: int, scale: float) -> np.ndarray:
    """The (out_len x in_len) matrix that resizes one dimension the way MATLAB does.

    Follows MATLAB's ``contributions``: 1-based output coordinate x maps to input
    coordinate u = x/scale + 0.5*(1 - 1/scale); when shrinking, the kernel is widened by
    1/scale (antialiasing); weights are normalised per output pixel before indices past
    the border are mirrored (edge pixel repeated), so mirrored taps add up.
    """
    width = 4.0
    if scale < 1.0:
        width /= scale

        def kernel(t: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * t)

    else:
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based
    w = kernel(u[:, None] - idx)
    w /= w.sum(axis=1, keepdims=True)
    # MATLAB's aux = [1:n, n:-1:1] indexed with mod(idx - 1, 2n): symmetric padding.
    period = 2 * in_len
    m = np.mod(idx.astype(np.int64) - 1, period)
    src = np.where(m < in_len, m, period - 1 - m)  # 0-based
    mat = np.zeros((out_len, in_len), dtype=np.float64)
    rows = np.broadcast_to(np.arange(out_len)[:, None], src.shape)
    np.add.at(mat, (rows, src), w)
    return mat


def _resize_dim(x: np.ndarray, mat: np.ndarray, dim: int) -> np.ndarray:
    """Resize float64 (C, H, W) array ``x`` along H (dim 0) or W (dim 1) by ``mat``.

    ``mat`` is banded, so each block of output rows multiplies only the band of input
    rows its weights touch: the cost stays linear in the image size.
    """
    c, h, w = x.shape
    out_len = mat.shape[0]
    out_shape = (c, out_len, w) if dim == 0 else (c, h, out_len)
    out = np.empty(out_shape, dtype=np.float64)
    nonzero = mat != 0.0
    for r0 in range(0, out_len, _BLOCK_ROWS):
        r1 = min(r0 + _BLOCK_ROWS, out_len)
        cols = np.flatnonzero(nonzero[r0:r1].any(axis=0))
        c0, c1 = int(cols[0]), int(cols[-1]) + 1
        block = mat[r0:r1, c0:c1]
        if dim == 0:
            out[:, r0:r1, :] = np.matmul(block, x[:, c0:c1, :])
        else:
            out[:, :, r0:r1] = np.matmul(x[:, :, c0:c1], block.T)
    return out


def _round_uint8(x: np.ndarray) -> np.ndarray:
    # MATLAB rounds half away from zero (numpy's around rounds half to even); after the
    # clip to [0, 255] that is floor(x + 0.5).
    np.clip(x, 0.0, 255.0, out=x)
    x += 0.5
    return np.floor(x, out=x)


def imresize(
    img: np.ndarray,
    scale: float | None = None,
    *,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """MATLAB's ``imresize(img, scale, 'bicubic')`` (antialiased), for comparable SR inputs.

    Give ``scale`` (output size ``ceil(in * scale)``, as MATLAB) or ``size=(out_h, out_w)``
    (each dimension then has its own scale out/in). HxW or HxWxC; uint8 comes back uint8,
    rounded and clipped after each of the two 1-D passes as MATLAB's uint8 path does;
    floating input comes back float32, unclipped.
    """
    arr = np.asarray(img)
    if arr.ndim not in (2, 3):
        raise OptionError(f"imresize needs an HxW or HxWxC image, got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise OptionError(f"imresize got an empty image of shape {arr.shape}")
    is_uint8 = arr.dtype == np.uint8
    if not is_uint8 and not np.issubdtype(arr.dtype, np.floating):
        raise OptionError(f"imresize needs a uint8 or floating image, got dtype {arr.dtype}")
    in_h, in_w = arr.shape[:2]

    if (scale is None) == (size is None):
        raise OptionError("imresize needs exactly one of scale and size")
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.number)):
            raise OptionError(f"scale must be a positive number, got {scale!r}")
        s = float(scale)
        if not (math.isfinite(s) and s > 0.0):
            raise OptionError(f"scale must be a positive number, got {scale!r}")
        scales = (s, s)
        out_size = (math.ceil(in_h * s), math.ceil(in_w * s))
    else:
        try:
            out_h, out_w = size  # type: ignore[misc]
        except (TypeError, ValueError):
            raise OptionError(f"size must be (out_h, out_w), got {size!r}") from None
        for v in (out_h, out_w):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise OptionError(f"size must be two positive integers, got {size!r}")
        out_size = (int(out_h), int(out_w))
        scales = (out_size[0] / in_h, out_size[1] / in_w)

    squeeze = arr.ndim == 2
    # Work channel-first, so that both passes are plain matrix products without transposes.
    x = np.ascontiguousarray(np.moveaxis(arr[:, :, None] if squeeze else arr, 2, 0), np.float64)
    # MATLAB resizes along the dimension with the smaller scale first (stable on ties).
    order = (0, 1) if scales[0] <= scales[1] else (1, 0)
    for dim in order:
        in_len = x.shape[dim + 1]
        mat = _weight_matrix(in_len, out_size[dim], scales[dim])
        x = _resize_dim(x, mat, dim)
        if is_uint8:
            x = _round_uint8(x)
    out = np.moveaxis(x, 0, 2)
    if squeeze:
        out = out[:, :, 0]
    return np.ascontiguousarray(out, np.uint8 if is_uint8 else np.float32)


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop H and W down to multiples of ``scale`` (top-left kept), so HR and LR align."""
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise OptionError(f"modcrop scale must be a positive integer, got {scale!r}")
    arr = np.asarray(img)
    if arr.ndim < 2:
        raise OptionError(f"modcrop needs an HxW or HxWxC image, got shape {arr.shape}")
    h, w = arr.shape[:2]
    return arr[: h - h % scale, : w - w % scale]


def bicubic_downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """The SR benchmark LR input: ``modcrop`` then MATLAB bicubic ``imresize`` by 1/scale."""
    cropped = modcrop(hr, scale)
    h, w = cropped.shape[:2]
    if h < scale or w < scale:
        raise OptionError(f"image of shape {np.shape(hr)} is smaller than scale {scale}")
    lr = imresize(cropped, 1.0 / scale)
    if lr.shape[:2] != (h // scale, w // scale):  # guard against ceil() of a rounded product
        lr = imresize(cropped, size=(h // scale, w // scale))
    return lr


def jpeg_compress(img: np.ndarray, quality: int, *, color_order: str = "rgb") -> np.ndarray:
    """Round-trip through OpenCV's JPEG codec at ``quality`` (JPEG artefact removal task).

    OpenCV encodes BGR, so RGB input is swapped on the way in and out; gray stays gray.
    """
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise OptionError(f"jpeg_compress needs a uint8 image, got dtype {arr.dtype}")
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)):
        raise OptionError(f"JPEG quality must be an integer in 1..100, got {quality!r}")
    if not 1 <= quality <= 100:
        raise OptionError(f"JPEG quality must be in 1..100, got {quality}")
    if color_order not in ("rgb", "bgr"):
        raise OptionError(f"color_order must be 'rgb' or 'bgr', got {color_order!r}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        return jpeg_compress(arr[:, :, 0], quality, color_order=color_order)[:, :, None]
    if arr.ndim == 2:
        to_codec, flag = arr, cv2.IMREAD_GRAYSCALE
    elif arr.ndim == 3 and arr.shape[2] == 3:
        to_codec = arr[:, :, ::-1] if color_order == "rgb" else arr
        flag = cv2.IMREAD_COLOR
    else:
        raise OptionError(f"jpeg_compress needs an HxW or HxWx3 image, got shape {arr.shape}")
    ok, buf = cv2.imencode(
        ".jpg", np.ascontiguousarray(to_codec), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:
        raise OptionError(f"OpenCV could not JPEG-encode an image of shape {arr.shape}")
    out = cv2.imdecode(buf, flag)
    if arr.ndim == 3 and color_order == "rgb":
        out = np.ascontiguousarray(out[:, :, ::-1])
    return out


def _pair(value, default, cast) -> tuple:
    v = default if value is None else value
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise OptionError(f"a range is two numbers (low, high), got {v!r}")
        return cast(v[0]), cast(v[1])
    return cast(v), cast(v)


@dataclass(frozen=True)
class Degradation:
    """What is done to a clean image for a task.

    SR: MATLAB's bicubic downscale by the task's scale. Denoising: additive white Gaussian
    noise of std `sigma` (0..255 scale), or with `noise="camera"` noise as cameras store it
    (`jsnet_edge.camera.camera_degrade`: signal-dependent sensor noise, 4:2:0 chroma, H.264
    or JPEG at random strengths). JPEG: OpenCV's codec at `quality`. `sigma` and
    `quality` are one value or a (low, high) range; a range makes a blind model (each
    training patch draws its own value, uniformly), and `for_validation()` picks the one
    value a blind model is measured at. None means the default (sigma 25, quality 10).
    """

    task: str
    sigma: float | tuple[float, float] | None = None
    quality: int | tuple[int, int] | None = None
    noise: str = "gaussian"  # denoising: "gaussian" (white, in RGB) or "camera" (see below)

    def __post_init__(self) -> None:
        check_task(self.task)
        if self.noise not in NOISES:
            raise OptionError(f"--noise must be one of {', '.join(NOISES)}, not {self.noise!r}")
        if self.noise != "gaussian" and self.task != "denoise":
            raise OptionError(f"--noise applies to --task denoise, not {self.task}")
        if self.sigma is not None and self.task != "denoise":
            raise OptionError(
                f"--sigma applies to --task denoise, not {self.task} (a noise sigma applies "
                "to denoising only)"
            )
        if self.quality is not None and self.task != "jpeg":
            raise OptionError(
                f"--quality applies to --task jpeg, not {self.task} (a JPEG quality applies "
                "to JPEG models only)"
            )
        lo, hi = self.sigma_range
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi <= 255):
            raise OptionError(
                f"sigma range must satisfy 0 <= low <= high <= 255, got {lo:g},{hi:g}"
            )
        qlo, qhi = self.quality_range
        if not 1 <= qlo <= qhi <= 100:
            raise OptionError(
                f"JPEG quality range must satisfy 1 <= low <= high <= 100, got {qlo},{qhi}"
            )

    @property
    def scale(self) -> int:
        return task_scale(self.task)

    @property
    def sigma_range(self) -> tuple[float, float]:
        return _pair(self.sigma, DEFAULT_SIGMA, float)

    @property
    def quality_range(self) -> tuple[int, int]:
        return _pair(self.quality, DEFAULT_QUALITY, int)

    def describe(self) -> str:
        if self.scale > 1:
            return f"bicubic x{self.scale} downscale (MATLAB imresize)"
        if self.task == "denoise" and self.noise == "camera":
            lo, hi = self.sigma_range
            return (
                "camera noise (Poisson-Gaussian, or Gaussian sigma "
                f"{lo:g}-{hi:g}), 4:2:0, H.264 CRF 15-30 or JPEG q50-95 (blind)"
            )
        if self.task == "denoise":
            lo, hi = self.sigma_range
            return (
                f"Gaussian noise, sigma {lo:g}"
                if lo == hi
                else f"Gaussian noise, sigma uniform in [{lo:g}, {hi:g}] (blind)"
            )
        lo, hi = self.quality_range
        return f"JPEG quality {lo}" if lo == hi else f"JPEG quality uniform in [{lo}, {hi}] (blind)"

    def for_validation(self) -> Degradation:
        """The fixed degradation a (possibly blind) model is validated at: sigma 25 where
        the range holds it (else its top), the lowest JPEG quality."""
        if self.task == "denoise" and self.noise == "camera":
            return self  # random by nature; `degrade(..., seed)` makes each image's fixed
        if self.task == "denoise":
            lo, hi = self.sigma_range
            return Degradation(self.task, sigma=DEFAULT_SIGMA if lo <= DEFAULT_SIGMA <= hi else hi)
        if self.task == "jpeg":
            return Degradation(self.task, quality=self.quality_range[0])
        return self

    def apply(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The degraded input for a clean uint8 image (HxW or HxWxC; for SR, a multiple
        of the scale): uint8 bicubic downscale (SR), float32 noisy image on 0..255, not
        clipped (denoising, the usual protocol; uint8 as a decoder gives it for camera noise),
        uint8 as OpenCV decodes it (JPEG). A range draws its value from `rng` first."""
        if self.scale > 1:
            return bicubic_downscale(clean, self.scale)
        if self.task == "denoise" and self.noise == "camera":
            return camera_degrade(clean, self.sigma_range, rng)
        if self.task == "denoise":
            lo, hi = self.sigma_range
            return add_gaussian_noise(
                clean, lo if lo == hi else float(rng.uniform(lo, hi)), rng=rng
            )
        lo, hi = self.quality_range
        q = lo if lo == hi else int(rng.integers(lo, hi + 1))
        return jpeg_compress(np.ascontiguousarray(clean), q)


def degrade_clip(
    clean: list[np.ndarray], deg: Degradation, rng: np.random.Generator
) -> list[np.ndarray]:
    """The degraded frames of a clip (clean uint8 frames of one size), as one camera or
    encoder treats a whole clip: a range's value is drawn once for the clip, the noise is
    fresh in every frame, and camera noise's H.264 runs over the clip (P-frames)."""
    if deg.task == "denoise" and deg.noise == "camera":
        return camera_degrade_clip(clean, deg.sigma_range, rng)
    lo, hi = deg.sigma_range if deg.task == "denoise" else deg.quality_range
    if deg.task == "jpeg":
        fixed = Degradation(deg.task, quality=lo if lo == hi else int(rng.integers(lo, hi + 1)))
    elif deg.task == "denoise":
        fixed = Degradation(deg.task, sigma=lo if lo == hi else float(rng.uniform(lo, hi)))
    else:
        fixed = deg
    return [fixed.apply(c, rng) for c in clean]


def degrade(clean: np.ndarray, deg: Degradation, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(clean target, degraded input) for a uint8 clean image, reproducibly from `seed`.

    SR: the target is cropped to a multiple of the scale, the input is its bicubic downscale.
    """
    target = modcrop(clean, deg.scale) if deg.scale > 1 else clean
    return target, deg.apply(target, np.random.default_rng(seed))


def baseline(degraded: np.ndarray, deg: Degradation) -> np.ndarray:
    """What a network is compared against: bicubic upscaling for SR, the input otherwise."""
    if deg.scale > 1:
        return imresize(degraded, deg.scale)
    return degraded
