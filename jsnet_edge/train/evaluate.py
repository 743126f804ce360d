"""Evaluation: degrade clean images for the model's task, restore, and score.

The degradation of each task is the one training uses (`degrade`), so that what a model
is trained on and what it is measured on cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from jsnet_edge.degradations import add_gaussian_noise, bicubic_downscale, imresize, jpeg_compress
from jsnet_edge.errors import OptionError
from jsnet_edge.images import list_images, load_image
from jsnet_edge.metrics import psnr, ssim
from jsnet_edge.tasks import check_task, task_scale

DEFAULT_SIGMA = 25.0
DEFAULT_QUALITY = 10


@dataclass(frozen=True)
class Degradation:
    """What is done to a clean image: SR scale, noise sigma or JPEG quality."""

    task: str
    sigma: float | None = None
    quality: int | None = None

    def __post_init__(self) -> None:
        check_task(self.task)
        if self.sigma is not None and self.task != "denoise":
            raise OptionError(f"--sigma applies to denoising; this model is for {self.task}")
        if self.quality is not None and self.task != "jpeg":
            raise OptionError(f"--quality applies to JPEG models; this model is for {self.task}")
        if self.sigma is not None and not 0 <= self.sigma <= 255:
            raise OptionError(f"sigma must be between 0 and 255, got {self.sigma}")
        if self.quality is not None and not 1 <= self.quality <= 100:
            raise OptionError(f"JPEG quality must be between 1 and 100, got {self.quality}")

    @property
    def scale(self) -> int:
        return task_scale(self.task)

    def describe(self) -> str:
        if self.scale > 1:
            return f"bicubic x{self.scale} downscale (MATLAB imresize)"
        if self.task == "denoise":
            return f"Gaussian noise sigma {self.sigma_or_default:g}"
        return f"JPEG quality {self.quality_or_default}"

    @property
    def sigma_or_default(self) -> float:
        return DEFAULT_SIGMA if self.sigma is None else self.sigma

    @property
    def quality_or_default(self) -> int:
        return DEFAULT_QUALITY if self.quality is None else self.quality


def degrade(clean: np.ndarray, deg: Degradation, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(clean target, degraded input) for a uint8 clean image.

    SR: the target is cropped to a multiple of the scale, the input is its uint8 bicubic
    downscale. Denoising: float32 input on 0..255, not clipped (the usual protocol).
    JPEG: uint8 input as OpenCV decodes it.
    """
    if deg.scale > 1:
        from jsnet_edge.degradations import modcrop

        target = modcrop(clean, deg.scale)
        return target, bicubic_downscale(target, deg.scale)
    if deg.task == "denoise":
        return clean, add_gaussian_noise(clean, deg.sigma_or_default, seed=seed)
    return clean, jpeg_compress(clean, deg.quality_or_default)


def baseline(degraded: np.ndarray, deg: Degradation) -> np.ndarray:
    """What the network is compared against: bicubic upscaling for SR, the input otherwise."""
    if deg.scale > 1:
        return imresize(degraded, deg.scale)
    return degraded


@dataclass(frozen=True)
class EvalConfig:
    data: Path
    sigma: float | None = None
    quality: int | None = None
    metric: str | None = None  # "y" or "rgb"; default by task
    crop: int | None = None
    limit: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.metric not in (None, "y", "rgb"):
            raise OptionError(f"--metric must be y or rgb, not {self.metric!r}")
        if self.crop is not None and self.crop < 16:
            raise OptionError(f"--crop must be at least 16 pixels, got {self.crop}")
        if self.limit is not None and self.limit < 1:
            raise OptionError(f"--limit must be at least 1, got {self.limit}")


@dataclass
class EvalReport:
    task: str
    degradation: str
    metric: str
    shave: int
    rows: list[dict] = field(default_factory=list)

    def mean(self, key: str) -> float:
        vals = [r[key] for r in self.rows]
        return float(np.mean(vals)) if vals else float("nan")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"] = {k: self.mean(k) for k in ("psnr", "ssim", "input_psnr", "input_ssim")}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def table(self) -> str:
        base = "bicubic" if task_scale(self.task) > 1 else "input"
        lines = [
            f"{self.task}: {self.degradation}; PSNR/SSIM on {self.metric.upper()}, "
            f"border {self.shave}",
            f"{'image':<32}{base + ' PSNR':>14}{'SSIM':>8}{'restored PSNR':>16}{'SSIM':>8}",
        ]
        for r in self.rows:
            lines.append(
                f"{r['image'][:31]:<32}{r['input_psnr']:>14.2f}{r['input_ssim']:>8.4f}"
                f"{r['psnr']:>16.2f}{r['ssim']:>8.4f}"
            )
        lines.append(
            f"{'mean':<32}{self.mean('input_psnr'):>14.2f}{self.mean('input_ssim'):>8.4f}"
            f"{self.mean('psnr'):>16.2f}{self.mean('ssim'):>8.4f}"
        )
        return "\n".join(lines)


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    th, tw = min(size, h), min(size, w)
    y, x = (h - th) // 2, (w - tw) // 2
    return img[y : y + th, x : x + tw]


def prepare_clean(img: np.ndarray, colors: int) -> np.ndarray:
    """A clean uint8 target with the model's channels (alpha dropped, 16-bit reduced)."""
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] in (2, 4):
        img = img[:, :, :-1]
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if colors == 1 and img.ndim == 3:
        return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    if colors == 3 and img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    return img


def _score(out: np.ndarray, target: np.ndarray, metric: str, shave: int) -> tuple[float, float]:
    return psnr(out, target, shave=shave, mode=metric), ssim(out, target, shave=shave, mode=metric)


def evaluate(restorer, cfg: EvalConfig) -> EvalReport:
    """Score a `Restorer` (RGB order) on the clean images of `cfg.data`."""
    deg = Degradation(restorer.task, cfg.sigma, cfg.quality)
    paths = list_images(cfg.data)
    if not paths:
        raise OptionError(f"folder {cfg.data} holds no images")
    if cfg.limit:
        paths = paths[: cfg.limit]
    metric = cfg.metric or ("y" if deg.scale > 1 or restorer.colors == 1 else "rgb")
    shave = deg.scale if deg.scale > 1 else 0
    report = EvalReport(restorer.task, deg.describe(), metric, shave)
    for i, path in enumerate(paths):
        clean = prepare_clean(load_image(path), restorer.colors)
        if cfg.crop:
            clean = center_crop(clean, cfg.crop)
        target, degraded = degrade(clean, deg, seed=cfg.seed + i)
        if degraded.dtype == np.float32:  # noisy float input, 0..255
            restored = restorer(degraded / 255.0) * 255.0
            restored = np.floor(restored + 0.5)
            base = np.clip(degraded, 0, 255)
        else:
            restored = restorer(degraded)
            base = baseline(degraded, deg)
        p, s = _score(restored, target, metric, shave)
        bp, bs = _score(base, target, metric, shave)
        report.rows.append(
            {"image": path.name, "psnr": p, "ssim": s, "input_psnr": bp, "input_ssim": bs}
        )
    return report
