"""Demo clips made from the photographs the package ships: a slow camera pan and zoom across
a photo, Gaussian noise of a known sigma, and a sine-tone audio track.

The clean frames are a pure function of (photo, size, frame count), so tests and benchmarks
can regenerate the ground truth that the noisy clip was made from.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from jsnet_edge.degradations import add_gaussian_noise
from jsnet_edge.errors import OptionError, OutputWriteError
from jsnet_edge.images import SAMPLES, load_image, sample_images
from jsnet_edge.outputs import check_output, commit, write_error_message
from jsnet_edge.sizes import parse_size as parse_wxh
from jsnet_edge.video.source import AV_MISSING, have_av
from jsnet_edge.video.writers import CvWriter, temp_beside

DEFAULT_PHOTO = "coffee.png"
AUDIO_RATE = 48_000


def parse_size(text: str) -> tuple[int, int]:
    """ "640x360" -> (640, 360); even sides, as 4:2:0 video needs."""
    w, h = parse_wxh(text)
    if w < 16 or h < 16 or w % 2 or h % 2 or w > 7680 or h > 4320:
        raise OptionError(f"size must be even, from 16x16 to 7680x4320, got {w}x{h}")
    return w, h


def load_photo(photo: str | Path | np.ndarray | None = None) -> np.ndarray:
    """A BGR uint8 photo: an array, a file, or the name of a bundled sample (default
    coffee.png)."""
    if isinstance(photo, np.ndarray):
        img = photo
    else:
        path = Path(photo) if photo is not None else SAMPLES / DEFAULT_PHOTO
        if not path.is_file() and (SAMPLES / str(photo)).is_file():
            path = SAMPLES / str(photo)
        if not path.is_file():
            names = ", ".join(p.name for p in sample_images())
            raise OptionError(f"no photo {photo}; the bundled ones are {names}")
        img = cv2.cvtColor(load_image(path), cv2.COLOR_RGB2BGR)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(img[:, :, :3])


def clean_frames(
    n: int, size: tuple[int, int], photo: str | Path | np.ndarray | None = None
) -> Iterator[np.ndarray]:
    """`n` BGR frames of `size` (w, h): a pan from upper left to lower right while zooming
    in by a quarter, smoothly (eased), over `photo` (see `load_photo`)."""
    img = load_photo(photo)
    w, h = size
    ph, pw = img.shape[:2]
    aspect = w / h
    fit_w = min(pw, ph * aspect)  # widest window of the output's aspect inside the photo
    win0 = 0.8 * fit_w  # leave room to pan
    # Work at about the output's resolution: warps then never shrink by much (no aliasing).
    f = 1.25 * w / win0
    if f < 1.0:
        img = cv2.resize(img, (round(pw * f), round(ph * f)), interpolation=cv2.INTER_AREA)
        ph, pw = img.shape[:2]
        win0 = 0.8 * min(pw, ph * aspect)
    for k in range(n):
        t = k / (n - 1) if n > 1 else 0.0
        e = 0.5 - 0.5 * math.cos(math.pi * t)  # ease in and out
        ww = win0 / (1.0 + 0.25 * e)
        wh = ww / aspect
        x0 = (0.15 + 0.7 * e) * (pw - ww)
        y0 = (0.3 + 0.4 * e) * (ph - wh)
        sx, sy = w / ww, h / wh
        m = np.array([[sx, 0.0, -x0 * sx], [0.0, sy, -y0 * sy]], np.float64)
        yield cv2.warpAffine(
            img, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101
        )


def add_noise(frame: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive white Gaussian noise (the one degradation, on the 0..255 scale), stored in
    8 bits as a video frame is."""
    if sigma <= 0:
        return frame
    noisy = add_gaussian_noise(frame, sigma, rng=rng, clip=True)
    return (noisy + 0.5).astype(np.uint8)


def tone(seconds: float, rate: int = AUDIO_RATE, freq: float = 440.0) -> np.ndarray:
    """A sine tone (float32, -1..1) with a slow tremolo, so it is audibly a test signal."""
    t = np.arange(round(seconds * rate)) / rate
    return (
        0.25 * np.sin(2 * np.pi * freq * t) * (0.75 + 0.25 * np.sin(2 * np.pi * 0.5 * t))
    ).astype(np.float32)


@dataclass
class SampleClip:
    path: Path
    frames: int
    fps: Fraction
    size: tuple[int, int]
    sigma: float
    audio: bool
    notes: list[str] = field(default_factory=list)


def make_sample_clip(
    path: str | Path,
    *,
    seconds: float = 4.0,
    fps: float = 25.0,
    size: tuple[int, int] = (640, 360),
    sigma: float = 25.0,
    seed: int = 0,
    photo: str | Path | np.ndarray | None = None,
    frames: int | None = None,
    audio: bool = True,
    rotation: int = 0,
    crf: int = 18,
    metadata: dict[str, str] | None = None,
    overwrite: bool = False,
) -> SampleClip:
    """Write a noisy demo clip (H.264 + AAC tone with PyAV, moov first so that even a cut
    file stays readable; OpenCV mp4v, video only, without PyAV).

    Args:
        frames: the frame count (default: seconds x fps).
        rotation: a display-rotation tag (degrees counter-clockwise; PyAV only), to test
            that it is carried through.
        metadata: container tags (title, comment ...); default: a title naming the source.
    """
    path = Path(path)
    check_output(path, overwrite=overwrite)
    if path.suffix.lower() not in (".mp4", ".mov", ".mkv"):
        raise OptionError(f"write the sample clip as .mp4, .mov or .mkv, not {path.name}")
    if not 0 < fps <= 240:
        raise OptionError(f"fps must be between 0 and 240, got {fps}")
    if sigma < 0:
        raise OptionError(f"sigma must be >= 0, got {sigma}")
    rate = Fraction(fps).limit_denominator(1001)
    n = frames if frames is not None else round(seconds * float(rate))
    if n < 1:
        raise OptionError("the clip needs at least one frame")
    w, h = size
    if w % 2 or h % 2:
        raise OptionError(f"size must be even, got {w}x{h}")
    rng = np.random.default_rng(seed)
    noisy = (add_noise(f, sigma, rng) for f in clean_frames(n, size, photo))
    meta = {
        "title": "jsnet-edge sample clip",
        "comment": f"pan/zoom over a bundled photograph, Gaussian noise sigma {sigma:g}",
    }
    meta.update(metadata or {})
    clip = SampleClip(path, n, rate, (w, h), sigma, audio)
    tmp = temp_beside(path, "tmp")
    try:
        if have_av():
            _write_av(tmp, noisy, rate, (w, h), n, audio, rotation, crf, meta)
        else:
            clip.audio = False
            clip.notes.append(f"{AV_MISSING}: wrote video only (mp4v), no audio track")
            writer = CvWriter(tmp, "mp4v", float(rate), (w, h))
            try:
                for f in noisy:
                    writer.write(f)
            finally:
                writer.close()
        commit(tmp, path, overwrite=overwrite)
    except OSError as e:  # PyAV's and the OS's: a full disk, a quota, a vanished folder
        raise OutputWriteError(write_error_message(path, e)) from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return clip


def _write_av(
    path: Path,
    frames: Iterator[np.ndarray],
    rate: Fraction,
    size: tuple[int, int],
    n: int,
    audio: bool,
    rotation: int,
    crf: int,
    meta: dict[str, str],
) -> None:
    import av

    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        out.metadata.update(meta)
        v = out.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": "fast"})
        v.width, v.height = size
        v.pix_fmt = "yuv420p"
        v.codec_context.time_base = 1 / rate
        if rotation:
            v.set_display_rotation(rotation)  # before the first packet, or it is lost
        a = None
        sig = tone(n / rate)
        if audio:
            a = out.add_stream("aac", rate=AUDIO_RATE)
            a.layout = "mono"
        step = (a.codec_context.frame_size or 1024) if a is not None else 1024
        done = 0  # audio samples sent; interleaved with the video, so memory stays small

        def send_audio(until: int) -> int:
            s = done
            while a is not None and s < min(until, len(sig)):
                fr = av.AudioFrame.from_ndarray(
                    sig[None, s : s + step], format="fltp", layout="mono"
                )
                fr.sample_rate, fr.pts, fr.time_base = AUDIO_RATE, s, Fraction(1, AUDIO_RATE)
                out.mux(a.encode(fr))
                s += step
            return s

        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="bgr24")
            f.pts, f.time_base = i, 1 / rate
            out.mux(v.encode(f))
            done = send_audio(round((i + 1) / rate * AUDIO_RATE))
        out.mux(v.encode(None))
        if a is not None:
            send_audio(len(sig))
            out.mux(a.encode(None))
