"""The one image loader and writer of the project.

Images are numpy arrays in RGB (or RGBA, or gray) order, uint8 or uint16 as stored on disk.
Reading goes through `cv2.imdecode` so that any path (non-ASCII too) works and a corrupt
file gives a clear error instead of a silent `None`; writing is atomic so that an error
never leaves a half-written file under the final name.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from jsnet_edge.errors import ImageError
from jsnet_edge.outputs import atomic_output, check_output

# What OpenCV reads and writes in every build we support.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")


def is_image_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside `folder`, sorted by name (hidden files skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError(f"{folder} is not a folder")
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and is_image_path(p) and not p.name.startswith(".")
    )


def load_image(path: str | Path) -> np.ndarray:
    """HxW (gray), HxWx3 (RGB) or HxWx4 (RGBA), uint8 or uint16 (or float32 for float TIFF).

    JPEGs are rotated by their EXIF orientation, as viewers show them.
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(f"image {path} does not exist")
    if path.is_dir():
        raise ImageError(f"{path} is a folder, not an image")
    if not is_image_path(path):
        raise ImageError(
            f"{path}: unsupported image type {path.suffix or '(no extension)'!r}; "
            f"use one of {', '.join(IMAGE_SUFFIXES)}"
        )
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise ImageError(f"cannot read {path}: {e.strerror or e}") from None
    if data.size == 0:
        raise ImageError(f"{path} is empty (0 bytes)")
    # JPEG has no alpha, and only the non-UNCHANGED flags apply the EXIF rotation.
    if path.suffix.lower() in (".jpg", ".jpeg"):
        flags = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH
    else:
        flags = cv2.IMREAD_UNCHANGED
    img = cv2.imdecode(data, flags)
    if img is None or img.size == 0:
        raise ImageError(
            f"{path} is corrupt or not a {path.suffix.lstrip('.').upper()} image OpenCV can decode"
        )
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    if img.dtype not in (np.uint8, np.uint16, np.float32):
        raise ImageError(f"{path} has pixels of type {img.dtype}, which is not supported")
    return img


def save_image(
    path: str | Path, img: np.ndarray, *, overwrite: bool = False, quality: int = 95
) -> Path:
    """Write an RGB(A)/gray array; written to a temporary file beside `path`, then renamed."""
    path = check_output(path, overwrite=overwrite)
    if not is_image_path(path):
        raise ImageError(
            f"cannot write {path}: unsupported image type; use one of {', '.join(IMAGE_SUFFIXES)}"
        )
    suffix = path.suffix.lower()
    out = img
    if out.ndim == 3 and out.shape[2] == 3:
        out = cv2.cvtColor(out, cv2.COLOR_RGB2BGR)
    elif out.ndim == 3 and out.shape[2] == 4:
        out = cv2.cvtColor(out, cv2.COLOR_RGBA2BGRA)
    if out.dtype == np.uint16 and suffix not in (".png", ".tif", ".tiff", ".ppm", ".pgm", ".pnm"):
        out = (out.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)  # 8-bit-only formats
    params: list[int] = []
    if suffix in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
        if out.ndim == 3 and out.shape[2] == 4:
            out = out[..., :3]  # JPEG has no alpha
    elif suffix == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, quality]
    ok, buf = cv2.imencode(suffix, out, params)
    if not ok:
        raise ImageError(f"OpenCV could not encode {path}")
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(buf.tobytes())
    return path


SAMPLES = Path(__file__).parent / "data"


def sample_images() -> list[Path]:
    """The photographs shipped with the package (CC0 / public domain; see data/README.md)."""
    return list_images(SAMPLES)


def prepare_clean(img: np.ndarray, colors: int) -> np.ndarray:
    """A clean uint8 image with a model's channels (alpha dropped, 16-bit and float reduced,
    gray <-> RGB as needed): what degradations start from."""
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


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    th, tw = min(size, h), min(size, w)
    y, x = (h - th) // 2, (w - tw) // 2
    return img[y : y + th, x : x + tw]
