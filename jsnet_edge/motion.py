"""The camera's motion between two frames, and the previous frame moved to match.

A recurrent denoiser (`Genotype.recurrent`) reads the previous restored frame beside the
current one; a small network sees only a few pixels around each of its own, so on a pan it
meets the previous frame a few pixels off everywhere. Moving the previous frame by the
camera's motion first (one global shift, found by phase correlation on a thumbnail, where
noise is averaged away) leaves the network only what the shift does not explain: moving
objects, zoom, less than a pixel of pan. Training (`jsnet_edge.train.trainer`) and the
video pipeline (`jsnet_edge.video.stages`) use these same functions, so the network learns
with the estimates it will get. (Measured on `denoise-rt` made recurrent, docs/benchmarks.md
"Time: a recurrent input": the recurrence adds 0.07-0.14 dB with the motion undone or not.)

Scene cuts (`is_scene_cut`) end the motion: the previous frame is then not used at all.
Shifts are whole multiples of `step` pixels (2 for 4:2:0 frames: chroma moves by whole
samples too); `shifted` repeats the edge into the uncovered border.
"""

from __future__ import annotations

import cv2
import numpy as np

THUMB_SIDE = 180  # thumbnails are about this many pixels on their short side
MIN_RESPONSE = 0.05  # phase correlation peak below this: no single motion, no shift
MAX_SHIFT = 0.125  # of the frame's short side: larger estimates are not trusted
# A scene cut: the mean change of the luma's 8x8-block means from the frame before is above
# this many grey levels (noise of sigma 50 moves block means by ~6; a cut by tens).
SCENE_CUT = 20.0


def block_means(luma: np.ndarray) -> np.ndarray:
    """The means of a 2-D luma plane's 8x8 blocks (float32): noise averaged away."""
    h, w = luma.shape
    small = cv2.resize(luma, (max(1, w // 8), max(1, h // 8)), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32)


def is_scene_cut(prev_means: np.ndarray, cur_means: np.ndarray) -> bool:
    """Whether two frames' `block_means` show another scene (a recurrent network then
    starts afresh)."""
    return float(np.abs(cur_means - prev_means).mean()) > SCENE_CUT


def thumbnail(luma: np.ndarray) -> tuple[np.ndarray, int]:
    """(float32 thumbnail of a 2-D luma plane, its reduction factor)."""
    h, w = luma.shape
    f = max(1, min(h, w) // THUMB_SIDE)
    x = luma.astype(np.float32)
    if f > 1:
        x = cv2.resize(x, (w // f, h // f), interpolation=cv2.INTER_AREA)
    return x, f


def global_shift(
    prev: tuple[np.ndarray, int], cur: tuple[np.ndarray, int], step: int = 2
) -> tuple[int, int]:
    """(dx, dy) such that cur[y, x] is about prev[y - dy, x - dx]: the scene's motion from
    the previous frame to this one, in whole multiples of `step` pixels, from the two
    frames' `thumbnail`s. (0, 0) where no single motion explains the change."""
    (a, f), (b, _) = prev, cur
    window = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(a, b, window)
    dx, dy = dx * f, dy * f
    limit = MAX_SHIFT * min(a.shape) * f
    if response < MIN_RESPONSE or abs(dx) > limit or abs(dy) > limit:
        return 0, 0
    return int(round(dx / step)) * step, int(round(dy / step)) * step


def shift_indices(h: int, w: int, dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) to take from an h x w plane so that out[y, x] = a[y - dy, x - dx], the
    edge repeated where the shift uncovers the border (numpy here, torch in training)."""
    rows = np.clip(np.arange(h) - dy, 0, h - 1)
    cols = np.clip(np.arange(w) - dx, 0, w - 1)
    return rows, cols


def shifted(a: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """out[..., y, x] = a[..., y - dy, x - dx] over the last two axes (`shift_indices`)."""
    if not dx and not dy:
        return a
    rows, cols = shift_indices(*a.shape[-2:], dx, dy)
    return a.take(rows, axis=-2).take(cols, axis=-1)


def shifted_i420(frame: np.ndarray, height: int, dx: int, dy: int) -> np.ndarray:
    """An I420 frame (3H/2 x W: Y, then U and V) moved by (dx, dy) luma pixels, both even:
    the chroma planes by half as much."""
    if not dx and not dy:
        return frame
    w = frame.shape[1]
    y = shifted(frame[:height], dx, dy)
    uv = frame[height:].reshape(2, height // 2, w // 2)
    uv = shifted(uv, dx // 2, dy // 2).reshape(height // 2, w)
    return np.concatenate([y, uv])
