"""Calibration and held-out images: real photographs, degraded for the task.

Calibration must see what the model will see in use, so inputs are degraded with the same
definition as training and evaluation (`jsnet_edge.degradations`). The loss of a quantised
model is measured on *other photographs* than the ones it was calibrated on (split by
image, never crops of the same photograph), one crop per held-out photograph, so that the
estimate is a mean over images with a spread, as the loss on unseen photographs will be.

Photographs larger than `MAX_SHORT_SIDE` are first downscaled: a crop of a 4K photograph
at full resolution is nearly flat at the pixel level (lens softness, JPEG smoothing), far
easier than the images people restore, and would make any estimate optimistic or erratic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from jsnet_edge.degradations import Degradation, degrade
from jsnet_edge.errors import ImageError, OptionError
from jsnet_edge.images import center_crop, list_images, load_image, prepare_clean, sample_images

if TYPE_CHECKING:
    from jsnet_edge.calibration.quantize import CalibrationConfig
    from jsnet_edge.models.network import JSNet

MAX_SHORT_SIDE = 512
HELDOUT_TARGET = 8  # held-out photographs wanted when a folder has enough
# scikit-image's own photographs (installed with it, no download), used beside the bundled
# ones when no folder is given: varied content (people, animals, objects, textures, sky,
# microscopy), colour and gray.
SKIMAGE_PHOTOS = (
    "astronaut",
    "camera",
    "chelsea",
    "coffee",
    "rocket",
    "clock",
    "coins",
    "brick",
    "grass",
    "gravel",
    "moon",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
)


@dataclass
class Pair:
    """One network input (NCHW float32, 0..255) and the clean target it should become."""

    input: np.ndarray
    target: np.ndarray
    name: str = ""


@dataclass(frozen=True)
class Photo:
    """A clean photograph (uint8, RGB or gray), prepared, and where it came from."""

    name: str
    image: np.ndarray


def prepare_photo(img: np.ndarray, colors: int) -> np.ndarray:
    """A clean uint8 image with the model's channels, no larger than `MAX_SHORT_SIDE` on
    its short side (area downscale)."""
    img = prepare_clean(img, colors)
    h, w = img.shape[:2]
    f = MAX_SHORT_SIDE / min(h, w)
    if f < 1:
        img = cv2.resize(img, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    return img


def builtin_photos(colors: int) -> list[Photo]:
    """The photographs shipped with the package, and scikit-image's when installed."""
    photos = [Photo(p.name, prepare_photo(load_image(p), colors)) for p in sample_images()]
    shipped = {p.name.split(".")[0] for p in sample_images()}
    try:
        from skimage import data
    except ImportError:
        return photos
    for name in SKIMAGE_PHOTOS:
        if name in shipped:
            continue
        try:
            img = getattr(data, name)()
        except Exception:  # noqa: BLE001 - a data file this scikit-image lacks
            continue
        photos.append(Photo(f"skimage:{name}", prepare_photo(img, colors)))
    return photos


def find_photos(data: Path | None, colors: int) -> list[Photo]:
    """The folder's photographs, or the built-in set when no folder is given; unreadable
    files in a folder are skipped, not fatal."""
    if data is None:
        return builtin_photos(colors)
    data = Path(data)
    if not data.is_dir():
        what = "is a file, not a folder" if data.exists() else "does not exist"
        raise OptionError(f"calibration folder {data} {what}")
    paths = list_images(data)
    if not paths:
        raise OptionError(f"calibration folder {data} holds no images (png, jpg, ...)")
    photos = []
    for p in paths:
        try:
            photos.append(Photo(p.name, prepare_photo(load_image(p), colors)))
        except ImageError:
            continue
    if not photos:
        raise OptionError(f"no usable calibration image in {data}: none of its images can be read")
    return photos


def split_photos(photos: list[Photo], heldout: int = HELDOUT_TARGET) -> tuple[list, list]:
    """(calibration, held-out), split by photograph: `heldout` photographs (spread over the
    sorted list) when at least twice as many are given, else half of them, at least one.
    A single photograph serves both (other crops of it): the caller says so."""
    if len(photos) == 1:
        return photos, photos
    n = max(1, min(heldout, len(photos) // 2))
    order = sorted(photos, key=lambda p: p.name)
    step = len(order) / n
    held_idx = {int(i * step + step / 2) for i in range(n)}
    held = [p for i, p in enumerate(order) if i in held_idx]
    return [p for i, p in enumerate(order) if i not in held_idx], held


def _as_input(degraded: np.ndarray) -> np.ndarray:
    x = degraded.astype(np.float32)
    x = x[:, :, None] if x.ndim == 2 else x
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def calibration_pairs(
    photos: list[Photo], deg: Degradation, count: int, crop: int, seed: int, multiple: int = 1
) -> list[Pair]:
    """`count` random degraded crops (input side `crop`, a multiple of `multiple`: what
    an unshuffled network needs) spread over `photos`."""
    rng = np.random.default_rng(seed)
    side = crop * deg.scale
    usable = [p for p in photos if min(p.image.shape[:2]) >= max(16, side // 2)]
    if not usable:
        raise OptionError(f"no calibration image is at least {side // 2} pixels on each side")
    pairs = []
    for i in range(count):
        photo = usable[i % len(usable)]
        h, w = photo.image.shape[:2]
        s = _fit(min(side, h, w), deg.scale * multiple)
        y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        target, degraded = degrade(photo.image[y : y + s, x : x + s], deg, seed=seed + i)
        pairs.append(Pair(_as_input(degraded), target, photo.name))
    return pairs


def _fit(side: int, step: int) -> int:
    return max(step, side - side % step)


def heldout_pairs(
    photos: list[Photo], deg: Degradation, crop: int, seed: int, multiple: int = 1
) -> list[Pair]:
    """One centre crop (input side `crop`, sides multiples of `multiple`) of each held-out
    photograph."""
    pairs = []
    step = deg.scale * multiple
    for i, photo in enumerate(photos):
        img = center_crop(photo.image, crop * deg.scale)
        h, w = img.shape[:2]
        img = img[: _fit(h, step), : _fit(w, step)]
        target, degraded = degrade(img, deg, seed + i)
        pairs.append(Pair(_as_input(degraded), target, photo.name))
    return pairs


def data_warnings(cfg: CalibrationConfig, photos: list, held: list) -> list[str]:
    notes = []
    if cfg.data is None:
        notes.append(
            f"no --data: calibrated and measured on {len(photos)} generic photographs (the "
            "bundled ones and scikit-image's), --max-drop held to the worst of them; "
            "calibrating on your own content (--data DIR) predicts the loss on it better"
        )
    if len(photos) == 1:
        notes.append(
            "only one photograph: calibrated and measured on crops of it, so the estimate "
            "says little about other images; give a folder of 16 or more photographs"
        )
    elif len(held) < cfg.heldout:
        notes.append(
            f"only {len(held)} held-out photographs ({len(photos)} given): the estimate is "
            f"rough; give {2 * cfg.heldout} or more photographs"
        )
    return notes


@dataclass
class CalibrationData:
    """What `calibrate` and `calibrate --qat` calibrate and measure on."""

    deg: Degradation
    rule: str  # how max_drop is held (estimate.RULES)
    notes: list[str]
    photos: tuple[list, list]  # calibration photographs, held-out photographs
    calib: list[Pair]
    held: list[Pair]


def prepare_data(
    model: JSNet, cfg: CalibrationConfig, say: Callable[[str], None]
) -> CalibrationData:
    """The degradation, the photographs split by image, their crops, and the notes said
    about them: one definition for post-training calibration and QAT."""
    deg = Degradation(
        model.task,
        cfg.sigma if model.task == "denoise" else None,
        cfg.quality if model.task == "jpeg" else None,
    )
    photos = find_photos(cfg.data, model.colors)
    calib_photos, held_photos = split_photos(photos, cfg.heldout)
    notes = data_warnings(cfg, photos, held_photos)
    for w in notes:
        say(f"note: {w}")
    m = model.size_multiple
    calib = calibration_pairs(calib_photos, deg, cfg.num_images, cfg.crop, cfg.seed, m)
    held = heldout_pairs(held_photos, deg, cfg.heldout_crop, cfg.seed + 1000, m)
    rule = "bound" if cfg.data is not None else "worst"
    return CalibrationData(deg, rule, notes, (calib_photos, held_photos), calib, held)
