"""The side-by-side preview (input | restored), as a file or a window."""

from __future__ import annotations

import cv2
import numpy as np


def has_gui() -> bool:
    """Whether this OpenCV build can open windows (opencv-python-headless cannot)."""
    info = cv2.getBuildInformation()
    i = info.find("GUI:")
    return i >= 0 and not info[i + 4 :].lstrip().upper().startswith("NONE")


def preview_size(w: int, h: int, rotation: int) -> tuple[int, int]:
    if rotation % 180:
        w, h = h, w
    return 2 * w, h


def side_by_side(frame: np.ndarray, out: np.ndarray, rotation: int, label: str) -> np.ndarray:
    """Input (bicubic to the output size) | restored, labelled, turned upright; 8-bit
    (16-bit frames of a 10-bit video are shown at their top 8 bits)."""
    if out.dtype == np.uint16:
        frame, out = (frame >> 8).astype(np.uint8), (out >> 8).astype(np.uint8)
    h, w = out.shape[:2]
    left = frame
    if left.shape[:2] != (h, w):
        left = cv2.resize(left, (w, h), interpolation=cv2.INTER_CUBIC)
    name = "input (bicubic)" if frame.shape[:2] != (h, w) else "input"
    if rotation:
        k = (rotation // 90) % 4
        left, out = np.rot90(left, k), np.rot90(out, k)
    side = np.ascontiguousarray(np.concatenate([left, out], axis=1))
    scale = max(0.35, side.shape[0] / 720)
    for text, x in ((name, 0), (label, side.shape[1] // 2)):
        org = (x + int(8 * scale) + 2, int(24 * scale) + 6)
        cv2.putText(
            side,
            text,
            org,
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (0, 0, 0),
            max(2, int(4 * scale)),
            cv2.LINE_AA,
        )
        cv2.putText(
            side,
            text,
            org,
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            max(1, int(1.5 * scale)),
            cv2.LINE_AA,
        )
    return side
