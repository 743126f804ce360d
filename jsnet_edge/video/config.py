"""`VideoConfig`: how a video is restored and written, as one checked value."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jsnet_edge.errors import OptionError

WINDOW = "window"
# Tile side of `jsnet-edge video` for models that are not real-time ones (those take whole
# frames: tiling.WHOLE_FRAME_TILE).
VIDEO_TILE = 640


@dataclass(frozen=True)
class VideoConfig:
    """Options of `jsnet_edge.video.process`.

    Args:
        batch: frames per backend call (larger helps GPUs; costs latency).
        codec: None: H.264 (libx264, CRF 18) through PyAV, or OpenCV's mp4v without
            PyAV; a name (h264, hevc, av1, vp9, ffv1 for lossless, mp4v for old players),
            an FFmpeg encoder (libx264 ...) or an OpenCV fourcc (`video.writers.CODECS`).
        crf: quality of CRF encoders (libx264: 0 lossless .. 51; default 18).
        chroma: colour resolution of lossy PyAV outputs: "420" (quarter, the default: the
            layout cameras record and every browser, phone, TV and hardware decoder plays)
            or "444" (full: keeps the restored colour, for software players such as
            Chromium, VLC and ffmpeg; hardware decoders refuse it).
        preview: a file for a side-by-side video (input | restored), or "window" to show
            one where OpenCV has a GUI.
        stats_path: write the summary as JSON there.
        realtime: for live sources: when restoration falls behind, drop the oldest waiting
            frames (the newest is always restored); a dropped frame repeats the previous
            restored one in the output, so timing and audio stay in sync. A file is then
            read at its own frame rate, as if live.
        max_frames: stop after this many frames (cameras never end on their own).
        overwrite: replace existing outputs (the video, the preview, the stats file).
        keep_partial: after an error or Ctrl-C, keep the frames written so far as
            `NAME.partial.EXT` (otherwise nothing is left behind).
    """

    batch: int = 1
    codec: str | None = None
    crf: int | None = None
    chroma: str = "420"
    preview: str | Path | None = None
    stats_path: str | Path | None = None
    realtime: bool = False
    max_frames: int | None = None
    overwrite: bool = False
    keep_partial: bool = False

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise OptionError(f"batch must be at least 1, got {self.batch}")
        if self.max_frames is not None and self.max_frames < 1:
            raise OptionError(f"max_frames must be at least 1, got {self.max_frames}")
        if self.crf is not None and not 0 <= self.crf <= 63:
            raise OptionError(f"--crf must be between 0 and 63, got {self.crf}")
        if self.chroma not in ("444", "420"):
            raise OptionError(f"--chroma must be 444 or 420, got {self.chroma!r}")

    @property
    def window(self) -> bool:
        return self.preview is not None and str(self.preview) == WINDOW

    @property
    def preview_path(self) -> Path | None:
        return None if self.preview is None or self.window else Path(self.preview)
