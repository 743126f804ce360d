"""Encoders for the restored video: OpenCV's VideoWriter (a core dependency) or a PyAV
(FFmpeg) encoder such as libx264 with a quality setting."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from jsnet_edge.errors import MissingDependencyError, OptionError
from jsnet_edge.outputs import temp_beside as _temp_beside
from jsnet_edge.video.errors import VideoError
from jsnet_edge.video.source import AV_MISSING, Source, have_av

# Output container -> the codec used when none is named: H.264 (libx264) as video
# tools write it, through PyAV; OpenCV's fourccs where PyAV is missing (or for .avi).
CONTAINERS: dict[str, tuple[str, str]] = {  # extension: (with PyAV, without)
    ".mp4": ("h264", "mp4v"),
    ".m4v": ("h264", "mp4v"),
    ".mov": ("h264", "mp4v"),
    ".mkv": ("h264", "mp4v"),
    ".avi": ("MJPG", "MJPG"),
    ".webm": ("vp9", "vp9"),
}
# --codec names -> FFmpeg encoders (four characters are an OpenCV fourcc instead).
CODECS: dict[str, str] = {
    "h264": "libx264",
    "hevc": "libx265",
    "h265": "libx265",
    "av1": "libsvtav1",
    "vp9": "libvpx-vp9",
    "ffv1": "ffv1",
}
LOSSLESS = ("ffv1",)  # RGB kept exactly: for judging a restorer, not for players
# Encoders whose 10-bit output players take (HEVC Main 10, AV1, VP9 profile 2): 10-bit
# input stays 10-bit there. H.264 High 10 is left out: browsers and hardware refuse it.
DEEP_ENCODERS = ("libx265", "libsvtav1", "libvpx-vp9")
# PyAV encoders that take a constant-rate-factor quality, and our default for each.
CRF_CODECS: dict[str, int] = {"libx264": 18, "libx265": 20, "libvpx-vp9": 31, "libsvtav1": 30}
# Containers each PyAV encoder goes in (the others refuse it, or players do).
ENCODER_CONTAINERS: dict[str, tuple[str, ...]] = {
    "libx264": (".mp4", ".m4v", ".mov", ".mkv", ".avi"),
    "libx265": (".mp4", ".m4v", ".mov", ".mkv"),
    "libsvtav1": (".mp4", ".mkv", ".webm"),
    "libvpx-vp9": (".mp4", ".mkv", ".webm"),
    "ffv1": (".mkv", ".avi"),
}


def container_for(codec: str | None, suffix: str) -> str:
    """The container extension to write `codec` in: `suffix` where it fits, else the
    first one that holds the codec (ffv1 goes in .mkv, say), else .mp4."""
    suffix = suffix.lower() if suffix.lower() in CONTAINERS else ".mp4"
    if codec is None:
        return suffix
    allowed = ENCODER_CONTAINERS.get(CODECS.get(codec.lower(), codec))
    return suffix if not allowed or suffix in allowed else allowed[0]


def x264_options(size: tuple[int, int]) -> dict[str, str]:
    """The libx264 settings for a frame size: the preset that keeps encoding well below
    restoration on two cores, and the deblocking filter where the preset drops it. Measured
    on restored 640x360 frames at CRF 18 (CPU ms a frame / PSNR against the frames given /
    size): faster 15.6 / 37.52 dB / 1089 KB, veryfast 11.9 / 36.71 / 968 KB, superfast
    7.1 / 37.80 / 1474 KB: superfast keeps more of the restoration at half the CPU of
    faster, for a larger file; the CPU it frees goes to restoration. From 1280x720 on,
    ultrafast: on a 720p clip `video --task denoise` ran 15.5 fps against 12.7 with
    superfast (encode 13 vs 29 ms a frame), luma 43.8 vs 44.8 dB against a lossless write
    of the same restored frames, 5.3 vs 4.9 MB.

    Ultrafast is the one preset that turns x264's in-loop deblocking filter off; it is
    turned back on (x264's default strength). On the restored frames of the 720p and 1080p
    benchmark clips it adds 0.27-0.53 dB of luma against the clean frames (above even a
    lossless write: the filter smooths what noise the network left), makes the file 4-7%
    smaller, and costs about 0.5 ms a 720p frame of one core (docs/benchmarks.md)."""
    if size[0] * size[1] < 1280 * 720:
        return {"preset": "superfast"}
    return {"preset": "ultrafast", "deblock": "0:0"}


def temp_beside(path: Path, tag: str) -> Path:
    """A fresh hidden file next to `path` with the same extension (so muxers pick the
    same container); renamed over `path` once it is complete."""
    return _temp_beside(path, f".{tag}{path.suffix}")


def partial_name(path: Path, taken_ok: bool = False) -> Path:
    """Where an unfinished or damaged run's frames go: NAME.partial.EXT, or NAME.partial-2.EXT
    ... when that is taken (unless `taken_ok`): a partial result never replaces a file."""
    candidate = path.with_name(f"{path.stem}.partial{path.suffix}")
    n = 2
    while candidate.exists() and not taken_ok:
        candidate = path.with_name(f"{path.stem}.partial-{n}{path.suffix}")
        n += 1
    return candidate


@dataclass(frozen=True)
class CodecChoice:
    name: str  # fourcc (OpenCV) or encoder name (PyAV)
    library: str  # "opencv" or "pyav"
    crf: int | None
    chroma: str = "420"  # lossy PyAV encoders: "420" (plays everywhere) or "444" (full colour)

    @property
    def keeps_10_bit(self) -> bool:
        return self.library == "pyav" and self.name in DEEP_ENCODERS


def choose_codec(
    path: Path, codec: str | None, crf: int | None, chroma: str = "420"
) -> CodecChoice:
    """The encoder for an output file. `codec`: h264 (the default for .mp4/.mov/.mkv with
    PyAV), hevc, av1, vp9, ffv1 (lossless RGB, .mkv/.avi), any FFmpeg encoder name (PyAV),
    or a 4-character OpenCV fourcc (mp4v, MJPG, XVID ...; no --crf)."""
    ext = path.suffix.lower()
    if ext not in CONTAINERS:
        raise VideoError(
            f"cannot write {ext or 'extension-less'} videos ({path.name}); use "
            f"one of {', '.join(CONTAINERS)}"
        )
    name = codec or CONTAINERS[ext][0 if have_av() else 1]
    name = CODECS.get(name.lower(), name)
    if len(name) == 4:
        if crf is not None:
            raise OptionError(
                f"--crf applies to PyAV encoders such as libx264, not the OpenCV fourcc {name}"
            )
        return CodecChoice(name, "opencv", None)
    if not have_av():
        raise MissingDependencyError(
            f"the encoder {name} needs PyAV, and {AV_MISSING}; or "
            f"use an OpenCV fourcc such as --codec mp4v"
        )
    import av

    try:
        av.Codec(name, "w")
    except (av.FFmpegError, ValueError):
        raise VideoError(
            f"unknown or unavailable encoder {name!r}; use h264, hevc, av1, vp9, ffv1 or an "
            "OpenCV fourcc such as mp4v"
        ) from None
    if name in ENCODER_CONTAINERS and ext not in ENCODER_CONTAINERS[name]:
        raise OptionError(
            f"{name} cannot go in a {ext} file; use {' or '.join(ENCODER_CONTAINERS[name])}"
        )
    if crf is not None and name not in CRF_CODECS:
        raise OptionError(f"--crf applies to {', '.join(CRF_CODECS)}, not {name}")
    return CodecChoice(name, "pyav", crf if crf is not None else CRF_CODECS.get(name), chroma)


class CvWriter:
    """OpenCV's VideoWriter (core dependency: works without PyAV)."""

    def __init__(self, path: Path, fourcc: str, fps: float, size: tuple[int, int]) -> None:
        self.path, self.size = path, size
        self.writer = cv2.VideoWriter(
            str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc), fps, size
        )
        if not self.writer.isOpened():
            raise VideoError(
                f"OpenCV cannot write the codec {fourcc!r} into a "
                f"{path.suffix} file; try --codec mp4v (.mp4, .mov, .mkv) or "
                "--codec MJPG (.avi)"
            )

    def write(self, frame: np.ndarray, pts: int | None = None) -> None:
        self.writer.write(frame)  # a constant frame rate: timestamps are not kept

    def close(self) -> None:
        self.writer.release()


class AvWriter:
    """A PyAV (FFmpeg) encoder writing a video-only file. Frames carry the input's
    timestamps where it has them (`time_base`): a variable frame rate stays variable;
    otherwise frame k is at k / rate."""

    def __init__(
        self,
        path: Path,
        codec: str,
        rate: Fraction,
        size: tuple[int, int],
        crf: int | None,
        time_base: Fraction | None = None,
        chroma: str = "420",
        colour: dict[str, int] | None = None,
        deep: bool = False,
    ) -> None:
        import av

        self.av = av
        self.path, self.size = path, size
        self.container = av.open(str(path), "w")
        options = {"crf": str(crf)} if crf is not None else {}
        if codec == "libx264":
            options |= x264_options(size)
        if codec == "libx265":  # else x265 prints its whole configuration on stderr
            options["x265-params"] = "log-level=error"
        try:
            self.stream = self.container.add_stream(codec, rate=rate, options=options)
            self.stream.width, self.stream.height = size
            formats = [f.name for f in (self.stream.codec.video_formats or [])]
            # 4:2:0 by default: what cameras record (the input's chroma had a quarter of
            # the resolution already) and the only layout hardware decoders of phones, TVs
            # and laptops play. 4:4:4 keeps the restored colour at full resolution, for
            # software players (docs/benchmarks.md compares the two).
            if codec in LOSSLESS:
                wanted = ["bgr0"]  # the frames' RGB, exactly
            elif chroma == "444":
                wanted = ["yuv444p", "yuv420p"]  # some encoders (SVT-AV1) have 4:2:0 only
            else:
                wanted = ["yuv420p"]
            if deep:  # 16-bit frames of a 10-bit input: 10 bits out where the encoder can
                wanted = [w + "10le" for w in wanted if w.startswith("yuv")] + wanted
            usable = [w for w in wanted if w in formats] or ([formats[0]] if formats else wanted)
            self.stream.pix_fmt = usable[0]
            self.stream.codec_context.time_base = time_base or Fraction(1) / rate
            # The input's colour tags (bt2020/PQ ...) are declared, and RGB becomes YUV
            # with its matrix, so that players show the colours the input had.
            self.colour = dict(colour or {}) if codec not in LOSSLESS else {}
            for k, v in self.colour.items():
                setattr(self.stream.codec_context, k, v)
        except (av.FFmpegError, ValueError) as e:
            self.container.close()
            raise VideoError(f"cannot set up the encoder {codec}: {e}") from None
        self.index = 0
        self.first_pts: int | None = None
        self.last_pts = -1

    def write(self, frame: np.ndarray, pts: int | None = None) -> None:
        # I420 planes (2-D) from the YUV path, 16-bit BGR of a 10-bit video, or BGR
        fmt = "yuv420p" if frame.ndim == 2 else "bgr48le" if frame.dtype == np.uint16 else "bgr24"
        f = self.av.VideoFrame.from_ndarray(frame, format=fmt)
        for k, v in self.colour.items():
            setattr(f, k, v)
        if pts is None:
            pts = self.index
        else:
            if self.first_pts is None:
                self.first_pts = pts
            pts -= self.first_pts
        f.pts = max(pts, self.last_pts + 1)  # strictly increasing, as encoders require
        self.last_pts = f.pts
        self.index += 1
        self.container.mux(self.stream.encode(f))

    def close(self) -> None:
        try:
            self.container.mux(self.stream.encode(None))
        finally:
            self.container.close()


def open_writer(
    path: Path, choice: CodecChoice, source: Source, size: tuple[int, int]
) -> CvWriter | AvWriter:
    if choice.library == "opencv":
        return CvWriter(path, choice.name, source.fps, size)
    return AvWriter(
        path,
        choice.name,
        source.rate,
        size,
        choice.crf,
        source.time_base,
        choice.chroma,
        source.colour,
        deep=choice.keeps_10_bit and source.depth > 8,
    )
