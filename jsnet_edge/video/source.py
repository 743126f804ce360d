"""Opening what a user names as video input: a file, a camera index or a stream URL.

OpenCV decodes (files, cameras, network streams); PyAV, where installed (the `video`
extra), probes files for their exact frame rate and count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from jsnet_edge.video.errors import VideoError

LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "udp://", "tcp://", "srt://")
AV_MISSING = "PyAV is not installed (pip install 'jsnet-edge[video]')"


def have_av() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class Source:
    """An opened input and what is known about it before decoding."""

    name: str  # as the user gave it, for messages
    kind: str  # "file", "camera" or "url"
    path: Path | None  # files only
    cap: cv2.VideoCapture
    fps: float
    rate: Fraction  # exact frame rate when PyAV knows it, else from fps
    frames_expected: int | None
    frames_exact: bool  # the count comes from the container index, not an estimate
    rotation: int  # display rotation, degrees counter-clockwise (PyAV convention)
    live: bool
    notes: list[str] = field(default_factory=list)


def parse_source(src: str | int | Path) -> tuple[str, int | str | Path]:
    """("camera", index), ("url", text) or ("file", path) for what the user typed."""
    if isinstance(src, int):
        return "camera", src
    text = str(src)
    if isinstance(src, str) and text.isdigit():
        return "camera", int(text)
    if "://" in text and not isinstance(src, Path):
        return "url", text
    return "file", Path(src)


def open_source(src: str | int | Path, *, bake_rotation: bool) -> Source:
    """Open a file, camera index or URL with OpenCV; a clear error when it cannot be read.

    bake_rotation: let OpenCV turn the pixels upright (used when the output cannot carry a
    rotation tag); otherwise frames stay as stored and the tag is copied.
    """
    kind, what = parse_source(src)
    notes: list[str] = []
    if kind == "file":
        path = Path(what)
        cap = open_file(path)
    elif kind == "camera":
        path = None
        cap = cv2.VideoCapture(int(what))
        if not cap.isOpened():
            raise VideoError(f"cannot open camera {what}: no such device, or it is busy")
    else:
        path = None
        cap = cv2.VideoCapture(str(what), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            raise VideoError(
                f"cannot open the stream {what}: unreachable, or not a video OpenCV can read"
            )
    if kind != "file":
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # a live source: always the freshest frame
    meta = cap.get(cv2.CAP_PROP_ORIENTATION_META)  # clockwise degrees
    rotation = _ccw(-int(meta)) if np.isfinite(meta) else 0
    if not bake_rotation:
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
    fps = cap.get(cv2.CAP_PROP_FPS)
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    frames = int(count) if kind == "file" and np.isfinite(count) and count > 0 else None
    exact = False
    rate = None
    if kind == "file" and have_av():
        info = probe_video(path)
        if info is not None:
            rate, nb = info
            if nb > 0:
                frames, exact = nb, True
    if not np.isfinite(fps) or fps <= 0 or fps > 1000:
        if rate is None:
            notes.append(f"{what} reports no frame rate; writing 30 fps")
            fps = 30.0
        else:
            fps = float(rate)
    if rate is None:
        rate = Fraction(fps).limit_denominator(1001)
    live = kind == "camera" or (kind == "url" and str(what).lower().startswith(LIVE_SCHEMES))
    return Source(
        name=str(what),
        kind=kind,
        path=path,
        cap=cap,
        fps=fps,
        rate=rate,
        frames_expected=frames,
        frames_exact=exact,
        rotation=rotation,
        live=live,
        notes=notes,
    )


def open_file(path: Path) -> cv2.VideoCapture:
    """An opened capture of a video file, or a VideoError that says what is wrong."""
    if not path.exists():
        raise VideoError(f"input {path} does not exist")
    if path.is_dir():
        raise VideoError(f"{path} is a folder, not a video")
    if path.stat().st_size == 0:
        raise VideoError(f"{path} is empty (0 bytes)")
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise VideoError(
            f"cannot read {path}: not a video OpenCV can open (unsupported "
            "container or codec, or a damaged file)"
        )
    return cap


def _ccw(deg: int) -> int:
    """Degrees normalised to (-180, 180]."""
    deg %= 360
    return deg - 360 if deg > 180 else deg


def probe_video(path: Path) -> tuple[Fraction, int] | None:
    """(exact frame rate, frame count from the index or 0) of the first video stream."""
    import av

    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                return None
            v = c.streams.video[0]
            rate = v.average_rate or v.guessed_rate or v.base_rate
            return (Fraction(rate) if rate else None), int(v.frames or 0)
    except (av.FFmpegError, ValueError, OSError):
        return None
