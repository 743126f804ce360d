"""Opening what a user names as video input: a file, a camera index or a stream URL.

PyAV (FFmpeg, with its decoding threads) reads files where it is installed: exact frame
counts from the index, each frame's timestamp (variable frame rates stay variable), damaged
packets counted; OpenCV reads cameras, network streams, and files without PyAV.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from jsnet_edge.images import IMAGE_SUFFIXES
from jsnet_edge.video.errors import VideoError

LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "udp://", "tcp://", "srt://")
AV_MISSING = "PyAV is not installed (pip install 'jsnet-edge[video]')"
FRAME_THREADS_FROM = 1280 * 720  # frame area from which files decode with frame threads


def have_av() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


class CvReader:
    """Frames from OpenCV's VideoCapture: cameras, network streams, and files where PyAV is
    not installed. No timestamps (the frame rate is taken as constant)."""

    def __init__(self, cap: cv2.VideoCapture) -> None:
        self.cap = cap
        self.failures = 0

    def read(self) -> tuple[np.ndarray, int | None] | None:
        ok, frame = self.cap.read()
        return (frame, None) if ok and frame is not None else None

    def release(self) -> None:
        self.cap.release()


class AvReader:
    """Frames of a file decoded by PyAV (FFmpeg), with each frame's timestamp
    (its pts, in `time_base`): variable-frame-rate video keeps its timing. A damaged packet
    is counted and skipped; the rest of the file is still read."""

    def __init__(self, path: Path) -> None:
        import av

        self.av = av
        self.container = av.open(str(path))
        if not self.container.streams.video:
            self.container.close()
            raise VideoError(no_video_message(path))
        # Below 720p FFmpeg's default threading (slice threads): frame threads ("AUTO")
        # decoded 640x360 H.264 13% slower here (5.40 vs 4.75 ms a frame, 2 cores,
        # restoration taking the cores too); OpenCV's decoder 4.83 ms. PyAV is kept for its
        # timestamps (variable frame rate) at equal speed. From 720p on, frame threads:
        # camera H.264 comes as one slice a frame, so slice threads leave decoding on one
        # core, and at 1080p decoding a frame (52 ms) is the pipeline's longest stage. Whole
        # `video` command, 2 cores, alternating runs: 1080p 8.70-9.14 s against 8.82-9.77
        # (5 pairs, 3% faster on average), 720p 4.36-4.48 s against 4.43-4.57.
        self.stream = self.container.streams.video[0]
        ctx = self.stream.codec_context
        if (ctx.width or 0) * (ctx.height or 0) >= FRAME_THREADS_FROM:
            self.stream.thread_type = "FRAME"
        self.time_base = self.stream.time_base
        self.failures = 0
        # Frames come as 8-bit BGR; the pipeline may ask, before the first read, for
        # 16-bit BGR ("bgr48le": 10-bit video stays 10-bit) or for the decoder's own
        # 4:2:0 planes ("yuv420p", I420: no conversion at all, for networks that read it).
        self.format = "bgr24"
        self._frames = self._decode()

    def _decode(self):
        av = self.av
        try:
            for packet in self.container.demux(self.stream):
                try:
                    frames = packet.decode()
                except av.InvalidDataError:
                    self.failures += 1
                    continue
                yield from frames
        except (av.FFmpegError, EOFError):  # a cut or damaged file: what was read stands
            self.failures += 1

    def read(self) -> tuple[np.ndarray, int | None] | None:
        frame = next(self._frames, None)
        if frame is None:
            return None
        return frame.to_ndarray(format=self.format), frame.pts

    def release(self) -> None:
        self._frames.close()
        self.container.close()


@dataclass
class Source:
    """An opened input and what is known about it before decoding."""

    name: str  # as the user gave it, for messages
    kind: str  # "file", "camera" or "url"
    path: Path | None  # files only
    reader: CvReader | AvReader
    fps: float
    rate: Fraction  # exact (average) frame rate when PyAV knows it, else from fps
    time_base: Fraction | None  # of the frames' timestamps (PyAV); None: constant rate
    frames_expected: int | None
    frames_exact: bool  # the count comes from the container index, not an estimate
    rotation: int  # display rotation, degrees counter-clockwise (PyAV convention)
    live: bool
    notes: list[str] = field(default_factory=list)
    colour: dict[str, int] = field(default_factory=dict)  # the video's colour tags (PyAV)
    depth: int = 8  # bits per sample of the decoded video (PyAV; 8 where unknown)
    pix_fmt: str | None = None  # the decoder's pixel format (PyAV), e.g. yuv420p
    full_range: bool = False  # samples on 0..255 (JPEG range) rather than 16..235


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


def open_source(src: str | int | Path) -> Source:
    """Open a file (PyAV where installed, else OpenCV), camera index or URL (OpenCV); a
    clear error when it cannot be read. Frames are decoded as stored: a rotation tag is
    copied to the output, or applied to the pixels where the output cannot carry it (no
    PyAV)."""
    kind, what = parse_source(src)
    if kind == "file" and have_av():
        return _open_av_file(Path(what))
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
    if have_av():  # the remux copies the tag: keep the pixels as stored
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
    fps = cap.get(cv2.CAP_PROP_FPS)
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    frames = int(count) if kind == "file" and np.isfinite(count) and count > 0 else None
    if not np.isfinite(fps) or fps <= 0 or fps > 1000:
        notes.append(f"{what} reports no frame rate; writing 30 fps")
        fps = 30.0
    live = kind == "camera" or (kind == "url" and str(what).lower().startswith(LIVE_SCHEMES))
    return Source(
        name=str(what),
        kind=kind,
        path=path,
        reader=CvReader(cap),
        fps=fps,
        rate=Fraction(fps).limit_denominator(1001),
        time_base=None,
        frames_expected=frames,
        frames_exact=False,
        rotation=rotation,
        live=live,
        notes=notes,
    )


def _open_av_file(path: Path) -> Source:
    import av

    check_file(path)  # the same checks and messages as without PyAV (no video: the reader's)
    try:
        reader = AvReader(path)
    except (av.FFmpegError, IndexError, OSError) as e:
        raise VideoError(f"cannot read {path}: {e}") from None
    v = reader.stream
    notes: list[str] = []
    rate = v.average_rate or v.guessed_rate or v.base_rate
    if not rate:
        notes.append(f"{path} reports no frame rate; writing 30 fps")
        rate = Fraction(30)
    rate = Fraction(rate)
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)  # reads the display-rotation tag
    meta = cap.get(cv2.CAP_PROP_ORIENTATION_META)  # clockwise degrees
    cap.release()
    rotation = _ccw(-int(meta)) if np.isfinite(meta) else 0
    frames = int(v.frames or 0)
    return Source(
        name=str(path),
        kind="file",
        path=path,
        reader=reader,
        fps=float(rate),
        rate=rate,
        time_base=reader.time_base,
        frames_expected=frames or None,  # only from the index: no guess from the duration
        frames_exact=frames > 0,
        rotation=rotation,
        live=False,
        notes=notes,
        colour=colour_tags(v.codec_context),
        depth=pix_fmt_depth(v.codec_context.pix_fmt),
        pix_fmt=v.codec_context.pix_fmt,
        full_range=int(getattr(v.codec_context, "color_range", 0) or 0) == 2,
    )


def pix_fmt_depth(pix_fmt: str | None) -> int:
    """Bits per sample of an FFmpeg pixel format (yuv420p10le: 10); 8 where unknown."""
    import av

    try:
        return max(c.bits for c in av.VideoFormat(pix_fmt or "yuv420p").components)
    except (ValueError, av.FFmpegError):
        return 8


def colour_tags(ctx) -> dict[str, int]:
    """The colour primaries, transfer and matrix a video stream declares (HDR10: bt2020,
    PQ), to declare on the restored video; unspecified (2) and RGB (0) are left out."""
    tags = {k: int(getattr(ctx, k, 2) or 0) for k in ("color_primaries", "color_trc")}
    tags["colorspace"] = int(ctx.colorspace or 0)
    return {k: v for k, v in tags.items() if v not in (0, 2)}


def no_video_message(path: Path) -> str:
    return f"{path} has no video stream (audio only?); give a video file"


def check_file(path: Path) -> None:
    """The checks that need no decoder: the file exists, is a file, is not empty and is not
    an image (each with its own message)."""
    if not path.exists():
        raise VideoError(f"input {path} does not exist")
    if path.is_dir():
        raise VideoError(f"{path} is a folder, not a video")
    if path.stat().st_size == 0:
        raise VideoError(f"{path} is empty (0 bytes)")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise VideoError(f"{path} is an image, not a video; restore it with `jsnet-edge image`")


def open_file(path: Path, opencv: bool | None = True) -> cv2.VideoCapture | None:
    """An opened OpenCV capture of a video file, or a VideoError that says what is wrong.
    `opencv` False: only the checks (None returned); None: a capture only where PyAV is
    missing or cannot open the file, so that OpenCV's failure names the problem (PyAV
    reads the files it opens: a capture there is one more open of the file, 25-50 ms)."""
    check_file(path)
    video = av_has_video(path) if have_av() else None
    if video is False:
        raise VideoError(no_video_message(path))
    if opencv is False or (opencv is None and video):
        return None
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise VideoError(
            f"cannot read {path}: not a video OpenCV can open (unsupported "
            "container or codec, or a damaged file)"
        )
    return cap


def frame_size(path: Path) -> tuple[int, int] | None:
    """(W, H) of a video file's frames as stored, read from its header (None when it cannot
    be read here: opening it for real says why)."""
    if have_av():
        probe = _av_probe(path)
        return probe[1] if probe else None
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        w, h = cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
        return (int(w), int(h)) if cap.isOpened() and w > 0 and h > 0 else None
    finally:
        cap.release()


def av_has_video(path: Path) -> bool | None:
    """Whether a file PyAV opens holds video (False: an audio file); None when PyAV cannot
    open it (OpenCV's message then says why)."""
    probe = _av_probe(path)
    return None if probe is None else probe[0]


def _av_probe(path: Path) -> tuple[bool, tuple[int, int] | None] | None:
    """(holds video, frame size (W, H) or None) as PyAV reads the file, or None when it
    cannot open it. Once per version of the file: the CLI and the pipeline both look before
    the reader opens it, and FFmpeg's open probes the streams by decoding (about one frame's
    time: 25 ms for 720p, 55 ms for 1080p camera H.264 on one core)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return _av_probe_version(str(path.resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _av_probe_version(
    path: str, mtime_ns: int, size: int
) -> tuple[bool, tuple[int, int] | None] | None:
    import av

    try:
        with av.open(path) as c:
            if not c.streams.video:
                return False, None
            v = c.streams.video[0]
            return True, ((v.codec_context.width, v.codec_context.height) if v.width else None)
    except (av.FFmpegError, ValueError, OSError, IndexError):
        return None


def count_video_packets(path: Path) -> int | None:
    """Video packets a file holds, read without decoding (None without PyAV, -1 if the
    file cannot be read at all): the check that an encoder really wrote what it was given."""
    if not have_av():
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        try:
            n = cap.get(cv2.CAP_PROP_FRAME_COUNT) if cap.isOpened() else -1
        finally:
            cap.release()
        return int(n) if n >= 0 else -1
    import av

    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                return -1
            return sum(1 for p in c.demux(c.streams.video[0]) if p.size)
    except (av.FFmpegError, ValueError, OSError, EOFError):
        return -1


def _ccw(deg: int) -> int:
    """Degrees normalised to (-180, 180]."""
    deg %= 360
    return deg - 360 if deg > 180 else deg
