"""Calibration and held-out inputs: crops of real photographs, degraded for the task.

Calibration must see what the model will see in use, so the crops are degraded with the
same definition as training and evaluation (`jsnet_edge.degradations`). A few
photographs are held out from calibration to measure what quantisation costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jsnet_edge.degradations import Degradation, degrade
from jsnet_edge.errors import ImageError, OptionError
from jsnet_edge.images import list_images, load_image, prepare_clean, sample_images


@dataclass
class Pair:
    """One network input (NCHW float32, 0..255) and the clean target it should become."""

    input: np.ndarray
    target: np.ndarray


def find_photos(data: Path | None) -> list[Path]:
    """The folder's images, or the photographs the package ships when no folder is given."""
    if data is None:
        return sample_images()
    data = Path(data)
    if not data.is_dir():
        raise OptionError(f"calibration folder {data} does not exist")
    paths = list_images(data)
    if not paths:
        raise OptionError(f"calibration folder {data} holds no images (png, jpg, ...)")
    return paths


def _crop(img: np.ndarray, size: int, rng: np.random.Generator | None) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(size, h, w)
    if rng is None:
        y, x = (h - s) // 2, (w - s) // 2
    else:
        y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
    return img[y : y + s, x : x + s]


def make_pairs(
    paths: list[Path],
    deg: Degradation,
    colors: int,
    count: int,
    crop: int,
    seed: int,
    center_first: bool = False,
) -> list[Pair]:
    """`count` degraded crops (input side `crop`) spread over `paths`."""
    rng = np.random.default_rng(seed)
    usable = []
    for p in paths:
        try:
            usable.append(prepare_clean(load_image(p), colors))
        except ImageError:
            continue  # a broken file in a calibration folder is skipped, not fatal
    side = crop * deg.scale
    usable = [u for u in usable if min(u.shape[:2]) >= max(16, side // 2)]
    if not usable:
        raise OptionError(
            f"no usable calibration image (all unreadable or smaller than {side // 2} pixels)"
        )
    pairs = []
    for i in range(count):
        img = usable[i % len(usable)]
        first = center_first and i < len(usable)
        clean = _crop(img, side, None if first else rng)
        target, degraded = degrade(clean, deg, seed=seed + i)
        x = degraded.astype(np.float32)
        x = x[:, :, None] if x.ndim == 2 else x
        pairs.append(Pair(np.ascontiguousarray(x.transpose(2, 0, 1)[None]), target))
    return pairs


def split_photos(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(calibration, held-out): every fourth photograph is held out, at least one."""
    if len(paths) == 1:
        return paths, paths  # one photo: different crops of it must do
    held = paths[3::4] or paths[-1:]
    return [p for p in paths if p not in held], held
