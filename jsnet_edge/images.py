"""The one image loader and writer of the project.

Images are numpy arrays in RGB (or RGBA, or gray) order, uint8 or uint16 as stored on disk.
Reading goes through `cv2.imdecode` so that any path (non-ASCII too) works and a corrupt
file gives a clear error instead of a silent `None`; writing is atomic so that an error
never leaves a half-written file under the final name.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from jsnet_edge.errors import DroppedContentWarning, ImageError
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


def _max_pixels() -> int:
    import os

    try:
        return int(os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", 1 << 30))
    except ValueError:
        return 1 << 30


def webp_frames(data: np.ndarray) -> int:
    """The frames of a WebP file (ANMF chunks of an animated one; 1 for a still)."""
    raw, pos, n = data.data, 12, 0  # a view: a large still is not copied
    if raw[:4] != b"RIFF" or raw[8:12] != b"WEBP":
        return 1
    while pos + 8 <= len(raw):
        size = int.from_bytes(raw[pos + 4 : pos + 8], "little")
        n += raw[pos : pos + 4] == b"ANMF"
        pos += 8 + size + (size & 1)
    return max(n, 1)


def load_image(path: str | Path, *, color_order: str = "rgb") -> np.ndarray:
    """HxW (gray), HxWx2 (gray + alpha), HxWx3 (RGB) or HxWx4 (RGBA), uint8 or uint16 (or
    float32 for float TIFF); `color_order="bgr"` keeps OpenCV's order (no conversion copy,
    which matters for very large images).

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
    with _quiet_native_stderr():  # libpng prints its own line for a corrupt file
        try:
            img = cv2.imdecode(data, flags)
        except cv2.error as e:  # the header claims a size OpenCV refuses to allocate
            if "CV_IO_MAX_IMAGE_PIXELS" not in str(e) and "size" not in str(e).lower():
                raise ImageError(f"{path} is corrupt: OpenCV cannot decode it") from None
            raise ImageError(
                f"{path} claims more than {_max_pixels() / 1e6:,.0f} megapixels (a damaged or "
                "hostile file); if it is real, raise OPENCV_IO_MAX_IMAGE_PIXELS"
            ) from None
    frames = webp_frames(data) if path.suffix.lower() == ".webp" else 1
    del data
    if frames > 1:
        warnings.warn(
            f"{path} is an animated WebP of {frames} frames: only its first frame is read",
            DroppedContentWarning,
            stacklevel=2,
        )
    if img is None or img.size == 0:
        raise ImageError(
            f"{path} is corrupt or not a {path.suffix.lstrip('.').upper()} image OpenCV can decode"
        )
    if path.suffix.lower() == ".png" and img.ndim == 3 and img.shape[2] == 4:
        if _png_is_gray_alpha(path):  # OpenCV expands gray + alpha to BGRA
            img = np.ascontiguousarray(img[:, :, [0, 3]])
    if color_order == "rgb" and img.ndim == 3 and img.shape[2] == 3:
        cv2.cvtColor(img, cv2.COLOR_BGR2RGB, dst=img)  # in place: no second copy
    elif color_order == "rgb" and img.ndim == 3 and img.shape[2] == 4:
        cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA, dst=img)
    if img.dtype not in (np.uint8, np.uint16, np.float32):
        raise ImageError(f"{path} has pixels of type {img.dtype}, which is not supported")
    return img


def save_image(
    path: str | Path,
    img: np.ndarray,
    *,
    overwrite: bool = False,
    quality: int = 95,
    color_order: str = "rgb",
) -> Path:
    """Write a gray, gray + alpha, RGB(A) array (BGR(A) with `color_order="bgr"`) through
    the output guard: a temporary file beside `path`, renamed when complete."""
    path = check_output(path, overwrite=overwrite)
    if not is_image_path(path):
        raise ImageError(
            f"cannot write {path}: unsupported image type; use one of {', '.join(IMAGE_SUFFIXES)}"
        )
    suffix = path.suffix.lower()
    out = img
    if out.ndim == 3 and out.shape[2] == 2:  # gray + alpha: OpenCV writes no such files
        if suffix != ".png":
            out = out[:, :, 0]  # formats without alpha keep the gray
        else:
            with atomic_output(path, overwrite=overwrite) as tmp:
                tmp.write_bytes(_png_gray_alpha(out))
            return path
    if color_order == "rgb" and out.ndim == 3 and out.shape[2] == 3:
        out = cv2.cvtColor(out, cv2.COLOR_RGB2BGR)
    elif color_order == "rgb" and out.ndim == 3 and out.shape[2] == 4:
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


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence what C libraries print on file descriptor 2 (libpng: "libpng error: ..."),
    for the duration of one decode; our own message says what is wrong, in one line.
    JSNET_EDGE_DEBUG=1 keeps their output."""
    if os.environ.get("JSNET_EDGE_DEBUG"):
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _png_is_gray_alpha(path: Path) -> bool:
    """PNG colour type 4 (gray + alpha), read from the IHDR chunk."""
    with open(path, "rb") as f:
        head = f.read(26)
    return len(head) == 26 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[25] == 4


def _png_gray_alpha(img: np.ndarray) -> bytes:
    """A gray + alpha (colour type 4) PNG of an HxWx2 uint8 or uint16 array."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    h, w = img.shape[:2]
    depth = 16 if img.dtype == np.uint16 else 8
    pixels = img.astype(">u2") if depth == 16 else img.astype(np.uint8)
    rows = pixels.reshape(h, -1).view(np.uint8).reshape(h, -1)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()  # filter 0
    header = struct.pack(">IIBBBBB", w, h, depth, 4, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


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
