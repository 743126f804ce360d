"""Evaluation: degrade clean images for the model's task, restore, and score.

The degradation of each task is the one training and calibration use
(`jsnet_edge.degradations`), and the score is the one every number uses
(`jsnet_edge.metrics.score`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from jsnet_edge.degradations import Degradation, baseline, degrade
from jsnet_edge.errors import JSNetEdgeError, OptionError
from jsnet_edge.images import center_crop, list_images, load_image, prepare_clean
from jsnet_edge.metrics import default_mode, score
from jsnet_edge.tasks import task_scale


@dataclass(frozen=True)
class EvalConfig:
    data: Path
    sigma: float | tuple[float, float] | None = None
    quality: int | None = None
    noise: str = "gaussian"
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


def _restore_float(restorer, img: np.ndarray) -> np.ndarray:
    """A float HxW(xC) image on 0..255, as the network takes it (model channels, RGB)."""
    x = img[:, :, None] if img.ndim == 2 else img
    y = restorer.restore_array(np.ascontiguousarray(x.transpose(2, 0, 1)[None], np.float32))
    y = y[0].transpose(1, 2, 0)
    return y[:, :, 0] if img.ndim == 2 else y


def evaluate(restorer, cfg: EvalConfig) -> EvalReport:
    """Score a `Restorer` (RGB order) on the clean images of `cfg.data`."""
    deg = Degradation(restorer.task, cfg.sigma, cfg.quality, cfg.noise)
    paths = list_images(cfg.data)
    if not paths:
        raise OptionError(f"folder {cfg.data} holds no images")
    if cfg.limit:
        paths = paths[: cfg.limit]
    metric = cfg.metric or default_mode(deg.scale, restorer.colors)
    shave = deg.scale if deg.scale > 1 else 0
    report = EvalReport(restorer.task, deg.describe(), metric, shave)
    for i, path in enumerate(paths):
        try:
            report.rows.append(_evaluate_one(restorer, path, deg, cfg, i, metric))
        except JSNetEdgeError as e:  # name the file: a folder may hold hundreds
            raise type(e)(f"{path.name}: {e}") from None
    return report


def _evaluate_one(restorer, path: Path, deg: Degradation, cfg: EvalConfig, i: int, metric: str):
    """One image: degraded, restored, scored (and its baseline)."""
    clean = prepare_clean(load_image(path), restorer.colors)
    if cfg.crop:
        clean = center_crop(clean, cfg.crop)
    target, degraded = degrade(clean, deg, seed=cfg.seed + i)
    if degraded.dtype == np.float32:  # noisy float input, 0..255, unclipped (the protocol)
        restored = _restore_float(restorer, degraded)
        base = np.clip(degraded, 0, 255)
    else:
        restored = restorer(degraded)
        base = baseline(degraded, deg)
    p, s = score(restored, target, scale=deg.scale, mode=metric, with_ssim=True)
    bp, bs = score(base, target, scale=deg.scale, mode=metric, rounded=False, with_ssim=True)
    return {"image": path.name, "psnr": p, "ssim": s, "input_psnr": bp, "input_ssim": bs}
