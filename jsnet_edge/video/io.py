"""Reading, writing and remuxing video: the OpenCV and PyAV side of the pipeline.

OpenCV decodes (files, cameras, network streams) and, by default, encodes, because it is a
core dependency. PyAV (the `video` extra) is optional; when present it (1) probes the input
for audio, metadata and the exact frame rate and count, (2) offers real encoders such as
libx264 with a CRF, and (3) muxes the encoded video with the input's audio and metadata
into the final file, by stream copy (no re-encoding of either).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from jsnet_edge import atomic
from jsnet_edge.errors import MissingDependencyError, OptionError, OutputExistsError
from jsnet_edge.video.errors import VideoError

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
LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "udp://", "tcp://", "srt://")
# Container tags that describe the file itself, not its content: the muxer writes its own.
TECHNICAL_TAGS = ("major_brand", "minor_version", "compatible_brands", "encoder")
AV_MISSING = "PyAV is not installed (pip install 'jsnet-edge[video]')"


def quiet_ffmpeg() -> None:
    """Silence the FFmpeg inside OpenCV (it prints a line per damaged packet); our own
    messages say what matters. JSNET_EDGE_DEBUG=1, or setting the variable, keeps them."""
    if not os.environ.get("JSNET_EDGE_DEBUG"):
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def have_av() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


# --- the source -------------------------------------------------------------------------


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
    quiet_ffmpeg()
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
    quiet_ffmpeg()
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


# --- output paths -------------------------------------------------------------------------


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (also through links or different spellings)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(path: Path, inputs: list[Path], *, overwrite: bool, what: str = "output") -> None:
    """Refuse to write over an input (whatever path names it), or over a file unasked."""
    for p in inputs:
        if same_file(path, p):
            raise OptionError(f"the {what} {path} is the input {p}; choose another {what}")
    if path.is_dir():
        raise OptionError(f"the {what} {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass --overwrite to replace it")


def temp_beside(path: Path, tag: str) -> Path:
    """A fresh hidden file next to `path` with the same extension (so muxers pick the
    same container); renamed over `path` once it is complete."""
    return atomic.temp_beside(path, f".{tag}{path.suffix}")


def partial_name(path: Path) -> Path:
    return path.with_name(f"{path.stem}.partial{path.suffix}")


# --- encoders ---------------------------------------------------------------------------


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


# --- remux: video + the input's audio and metadata -----------------------------------------


@dataclass
class RemuxResult:
    audio_copied: int = 0
    audio_transcoded: int = 0
    metadata_copied: bool = False
    rotation: int = 0
    notes: list[str] = field(default_factory=list)


def remux(
    video: Path,
    source: Path | None,
    out: Path,
    *,
    rotation: int,
    trim_audio_s: float | None = None,
    rate: Fraction | None = None,
) -> RemuxResult:
    """Mux the encoded `video` with the audio streams and container metadata of `source`
    into `out`: packets are copied, not re-encoded (an audio codec the output container
    cannot hold is re-encoded, and said). The rotation tag is set before anything is
    written: it is lost if set after the first packet (av 18).

    trim_audio_s: drop audio that starts after this time (the video was cut short).
    rate: the exact frame rate, where the encoder rounded it (OpenCV writes 30000/1001 as
        2997/100): video timestamps are rewritten to it, packets still copied. Only for
        video without frame reordering (OpenCV's encoders), as timestamps become frame
        numbers.
    """
    import av

    try:
        return _remux(video, source, out, rotation, trim_audio_s, rate, transcode_audio=False)
    except (av.FFmpegError, ValueError):
        if source is None:
            raise
    # e.g. pcm audio, which mp4 lists as supported but refuses: re-encode the audio
    return _remux(video, source, out, rotation, trim_audio_s, rate, transcode_audio=True)


def _remux(
    video: Path,
    source: Path | None,
    out: Path,
    rotation: int,
    trim_audio_s: float | None,
    rate: Fraction | None,
    *,
    transcode_audio: bool,
) -> RemuxResult:
    import heapq

    import av

    res = RemuxResult(rotation=rotation)
    ext = out.suffix.lower()
    options = {"movflags": "faststart"} if ext in (".mp4", ".m4v", ".mov") else {}
    src = av.open(str(source)) if source is not None else None
    tv = av.open(str(video))
    try:
        with av.open(str(out), "w", options=options) as oc:
            iv = tv.streams.video[0]
            ov = oc.add_stream_from_template(iv)
            retime = None
            if rate is not None:
                # The template's frame rate field comes out garbled for non-integer rates
                # (2997/100 as 2997, which Matroska then declares): set it.
                ov.codec_context.framerate = rate
                if iv.average_rate and Fraction(iv.average_rate) != rate:
                    retime = (Fraction(iv.average_rate), rate)
                    ov.time_base = 1 / rate
            if rotation:
                ov.set_display_rotation(rotation)
            audio: dict[int, tuple] = {}
            offset = 0.0
            if src is not None:
                oc.metadata.update(
                    {k: v for k, v in src.metadata.items() if k not in TECHNICAL_TAGS}
                )
                res.metadata_copied = True
                if src.streams.video:
                    sv = src.streams.video[0]
                    ov.metadata.update(
                        {k: v for k, v in sv.metadata.items() if k in ("language", "title")}
                    )
                    if sv.start_time is not None:
                        offset = float(sv.start_time * sv.time_base)
                for ia in src.streams.audio:
                    oa, enc = _audio_stream(oc, ia, res, transcode_audio)
                    if oa is not None:
                        audio[ia.index] = (ia, oa, enc)
                others = [s for s in src.streams if s.type not in ("video", "audio")]
                if others:
                    res.notes.append(
                        f"{len(others)} subtitle/data stream(s) of the input were not copied"
                    )
            gens = [_packets(tv, {iv.index: (iv, ov, None)}, 0.0, None, res, retime=retime)]
            if audio:
                # AVI counts time in frames and cannot start below zero: AAC's priming
                # packet (pts < 0) would shift the video by a frame, so start audio at 0.
                gens.append(
                    _packets(src, audio, offset, trim_audio_s, res, non_negative=ext == ".avi")
                )
            for _, _, pkts in heapq.merge(*gens, key=lambda x: (x[0], x[1])):
                oc.mux(pkts)
            for _, oa, enc in audio.values():
                if enc is not None:
                    oc.mux(oa.encode(None))
    finally:
        tv.close()
        if src is not None:
            src.close()
    return res


def _audio_stream(oc, ia, res: RemuxResult, transcode: bool):
    """An output stream for input audio `ia`: a copy when the container holds its codec,
    else an encoder the container does hold (returned as the second item)."""
    name = ia.codec_context.name
    if name in oc.supported_codecs and not transcode:
        oa = oc.add_stream_from_template(ia)
        oa.metadata.update({k: v for k, v in ia.metadata.items() if k in ("language", "title")})
        res.audio_copied += 1
        return oa, None
    import av

    for target in ("aac", "libopus", "libmp3lame", "pcm_s16le"):
        try:
            codec = av.Codec(target, "w")
        except (av.FFmpegError, ValueError):
            continue
        if codec.name not in oc.supported_codecs or (transcode and codec.name == name):
            continue
        oa = oc.add_stream(target, rate=ia.codec_context.sample_rate or 48000)
        # A layout without a channel order ("2 channels", as pcm in mkv has) is refused by
        # encoders: name the usual one for the channel count.
        n = ia.codec_context.layout.nb_channels if ia.codec_context.layout else 2
        oa.layout = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 8: "7.1"}.get(
            n, "stereo"
        )
        res.audio_transcoded += 1
        res.notes.append(
            f"the input's {name} audio cannot go into {oc.format.name} "
            f"as it is; re-encoded it as {target}"
        )
        return oa, target
    res.notes.append(
        f"the input's {name} audio cannot go into this container and no "
        "suitable encoder exists; audio dropped"
    )
    return None, None


def _packets(
    container,
    streams: dict,
    offset: float,
    trim: float | None,
    res: RemuxResult,
    non_negative: bool = False,
    retime: tuple[Fraction, Fraction] | None = None,
):
    """(time s, stream index, packets to mux) for the given streams of one input, in file
    order; `streams` maps an input stream index to (input, output stream, encoder).

    offset: seconds subtracted from every timestamp. non_negative: also move each stream
    whose first timestamp is negative to start at zero. retime: (written, exact) frame
    rates: timestamps become frame numbers at the exact rate.
    """
    import av

    ended: set[int] = set()
    shifts: dict[int, int] = {}  # per stream, in its time base
    try:
        for pkt in container.demux([s for s, _, _ in streams.values()]):
            # Matroska stores no dts: the first packets of reordered video have none, and
            # are kept; the demuxer's final flush packet has no data, and is not.
            stamp = pkt.dts if pkt.dts is not None else pkt.pts
            if stamp is None or pkt.size == 0 or pkt.stream.index in ended:
                continue
            idx = pkt.stream.index
            _, out_stream, encoder = streams[idx]
            t = float(stamp * pkt.time_base) - offset
            if (
                trim is not None
                and pkt.pts is not None
                and float(pkt.pts * pkt.time_base) - offset >= trim
            ):
                ended.add(idx)
                if len(ended) == len(streams):
                    return
                continue
            if encoder is not None:
                yield t, idx, [p for f in pkt.decode() for p in out_stream.encode(f)]
                continue
            if retime is not None:
                written, exact = retime
                tb = pkt.time_base
                pkt.pts = None if pkt.pts is None else round(pkt.pts * tb * written)
                pkt.dts = None if pkt.dts is None else round(pkt.dts * tb * written)
                pkt.time_base, pkt.duration = 1 / exact, 1
                stamp = pkt.dts if pkt.dts is not None else pkt.pts
            if idx not in shifts:
                shifts[idx] = round(offset / pkt.time_base)
                if non_negative and stamp - shifts[idx] < 0:
                    shifts[idx] = stamp
            shift = shifts[idx]
            if shift:
                pkt.pts = None if pkt.pts is None else pkt.pts - shift
                pkt.dts = None if pkt.dts is None else pkt.dts - shift
            pkt.stream = out_stream
            yield t, idx, pkt
    except (av.FFmpegError, EOFError) as e:
        if any(s.type == "video" for s, _, _ in streams.values()):
            raise
        res.notes.append(f"the input's audio is damaged; copied it up to the damage ({e})")
