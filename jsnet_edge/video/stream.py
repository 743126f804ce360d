"""Restore a sequence of frames: the in-memory core shared by `Restorer.stream` and the
video pipeline. Numpy only (no OpenCV, no PyAV), so it works on frames from anywhere."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from jsnet_edge.errors import OptionError

if TYPE_CHECKING:
    from jsnet_edge.restorer import Restorer


def restore_frames(
    restorer: Restorer, frames: list[np.ndarray], color_order: str | None = None
) -> list[np.ndarray]:
    """Restore several frames, in one backend call when they allow it.

    Same-shaped HxWx3 uint8 frames for an RGB model go through the backend as one NCHW
    batch (what GPUs need to be fast); anything else (gray or alpha frames, 16-bit, mixed
    sizes, gray models) goes frame by frame through `restorer(...)`, which handles all of it.

    Args:
        color_order: "bgr" or "rgb", the order of `frames`; default: the restorer's own.
    """
    order = color_order or restorer.color_order
    if order not in ("bgr", "rgb"):
        raise OptionError(f"color_order must be 'bgr' or 'rgb', not {order!r}")
    if not frames:
        return []
    first = frames[0]
    batchable = (
        len(frames) > 1
        and restorer.colors == 3
        and all(
            isinstance(f, np.ndarray)
            and f.dtype == np.uint8
            and f.ndim == 3
            and f.shape[2] == 3
            and f.shape == first.shape
            for f in frames
        )
    )
    if not batchable:
        if order == restorer.color_order:
            return [restorer(f) for f in frames]
        return [_swap(restorer(_swap(f))) for f in frames]
    limit = _max_batch(restorer)
    if limit is not None and len(frames) > limit:  # e.g. a TensorRT engine's profile
        return [
            out
            for i in range(0, len(frames), limit)
            for out in restore_frames(restorer, frames[i : i + limit], order)
        ]
    x = np.stack(frames)  # N H W C
    if order == "bgr":
        x = x[..., ::-1]
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)
    y = restorer.restore_array(x)
    y = np.clip(y, 0.0, 255.0) + 0.5  # the same rounding as Restorer.__call__
    y = y.astype(np.uint8).transpose(0, 2, 3, 1)
    if order == "bgr":
        y = y[..., ::-1]
    return [np.ascontiguousarray(f) for f in y]


def _max_batch(restorer: Restorer) -> int | None:
    """The largest batch the backend takes, where it has a limit (engine profiles do)."""
    shape = getattr(restorer.backend, "max_shape", None)
    try:
        return max(1, int(shape[0])) if shape is not None else None
    except (TypeError, IndexError, ValueError):
        return None


def _swap(img: np.ndarray) -> np.ndarray:
    """RGB <-> BGR for colour images; gray and other layouts pass through."""
    if img.ndim == 3 and img.shape[2] in (3, 4):
        return np.concatenate([img[..., 2::-1], img[..., 3:]], axis=2)
    return img


def stream(
    restorer: Restorer, frames: Iterable[np.ndarray], batch: int = 1
) -> Iterator[np.ndarray]:
    """Yield the restored frames of `frames`, in order, `batch` at a time.

    A generator, so a video of any length runs in the memory of one batch: frames are pulled
    from `frames` only as they are needed. Frames are in the restorer's colour order.
    """
    if batch < 1:
        raise OptionError(f"batch must be at least 1, got {batch}")
    pending: list[np.ndarray] = []
    for frame in frames:
        pending.append(frame)
        if len(pending) == batch:
            yield from restore_frames(restorer, pending)
            pending = []
    if pending:
        yield from restore_frames(restorer, pending)
