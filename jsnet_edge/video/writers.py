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

# Output container -> the codec used when none is named. Four characters are an OpenCV
# fourcc; longer names are PyAV (FFmpeg) encoders.
CONTAINERS: dict[str, str] = {
    ".mp4": "mp4v",
    ".m4v": "mp4v",
    ".mov": "mp4v",
    ".mkv": "mp4v",
    ".avi": "MJPG",
    ".webm": "libvpx-vp9",
}
# PyAV encoders that take a constant-rate-factor quality, and our default for each.
CRF_CODECS: dict[str, int] = {"libx264": 18, "libx265": 20, "libvpx-vp9": 31, "libsvtav1": 30}


def temp_beside(path: Path, tag: str) -> Path:
    """A fresh hidden file next to `path` with the same extension (so muxers pick the
    same container); renamed over `path` once it is complete."""
    return _temp_beside(path, f".{tag}{path.suffix}")


def partial_name(path: Path) -> Path:
    return path.with_name(f"{path.stem}.partial{path.suffix}")


@dataclass(frozen=True)
class CodecChoice:
    name: str  # fourcc (OpenCV) or encoder name (PyAV)
    library: str  # "opencv" or "pyav"
    crf: int | None


def choose_codec(path: Path, codec: str | None, crf: int | None) -> CodecChoice:
    """The encoder for an output file: a 4-character name is an OpenCV fourcc (mp4v, MJPG,
    XVID ...), a longer one a PyAV/FFmpeg encoder (libx264 ...), which takes --crf."""
    ext = path.suffix.lower()
    if ext not in CONTAINERS:
        raise VideoError(
            f"cannot write {ext or 'extension-less'} videos ({path.name}); use "
            f"one of {', '.join(CONTAINERS)}"
        )
    name = codec or CONTAINERS[ext]
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
            f"unknown or unavailable encoder {name!r}; try libx264, mpeg4 or an "
            "OpenCV fourcc such as mp4v"
        ) from None
    if crf is not None and not 0 <= crf <= 63:
        raise OptionError(f"--crf must be between 0 and 63, got {crf}")
    if crf is not None and name not in CRF_CODECS:
        raise OptionError(f"--crf applies to {', '.join(CRF_CODECS)}, not {name}")
    return CodecChoice(name, "pyav", crf if crf is not None else CRF_CODECS.get(name))


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

    def write(self, frame: np.ndarray) -> None:
        self.writer.write(frame)

    def close(self) -> None:
        self.writer.release()


class AvWriter:
    """A PyAV encoder (libx264 ...) writing a video-only file at an exact frame rate."""

    def __init__(
        self, path: Path, codec: str, rate: Fraction, size: tuple[int, int], crf: int | None
    ) -> None:
        import av

        self.av = av
        self.path, self.size = path, size
        self.container = av.open(str(path), "w")
        options = {"crf": str(crf)} if crf is not None else {}
        if codec == "libx264":
            options["preset"] = "fast"
        try:
            self.stream = self.container.add_stream(codec, rate=rate, options=options)
            self.stream.width, self.stream.height = size
            formats = [f.name for f in (self.stream.codec.video_formats or [])]
            self.stream.pix_fmt = "yuv420p" if "yuv420p" in formats or not formats else formats[0]
            self.stream.codec_context.time_base = Fraction(1) / rate
        except (av.FFmpegError, ValueError) as e:
            self.container.close()
            raise VideoError(f"cannot set up the encoder {codec}: {e}") from None
        self.index = 0

    def write(self, frame: np.ndarray) -> None:
        f = self.av.VideoFrame.from_ndarray(frame, format="bgr24")
        f.pts = self.index
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
    return AvWriter(path, choice.name, source.rate, size, choice.crf)
