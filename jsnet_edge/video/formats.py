"""Which frames the network gets: the decoder's own 4:2:0 planes where nothing needs RGB
(`jsnet_edge.models.frames`), else BGR (16-bit for 10-bit video that stays 10-bit)."""

from __future__ import annotations

from jsnet_edge.models.frame_layout import FrameLayout
from jsnet_edge.restorer import Restorer
from jsnet_edge.video.config import VideoConfig
from jsnet_edge.video.source import AvReader, Source
from jsnet_edge.video.stages import I420Path
from jsnet_edge.video.writers import LOSSLESS, CodecChoice

# Frames restored at once on the I420 path, each by a 1-thread stream of the runtime: on
# two cores 1.3x the frames a second of one 2-thread call (720p, OpenVINO bf16), and the
# decoder and encoder threads fit between them.
INFLIGHT = 2


def i420_path(
    source: Source, choice: CodecChoice, config: VideoConfig, restorer: Restorer
) -> I420Path | None:
    """The restorer's network on the decoder's own 4:2:0 frames where nothing needs RGB:
    an 8-bit limited-range 4:2:0 file in, a lossy 4:2:0 output, no preview. Frames then go
    from decoder to network to encoder with no conversion outside the graph (the network
    sees RGB inside it; `jsnet_edge.models.frames`). None: the RGB path."""
    reader = source.reader
    if not isinstance(reader, AvReader) or source.pix_fmt != "yuv420p" or source.full_range:
        return None
    if choice.library != "pyav" or choice.name in LOSSLESS or choice.chroma != "420":
        return None
    if config.preview is not None:
        return None
    w, h = reader.stream.width, reader.stream.height
    if not w or not h or w % 2 or h % 2:
        return None
    matrix = "bt709" if source.colour.get("colorspace") == 1 else "bt601"  # as FFmpeg reads
    # a recurrent network restores one frame after the other, with all the threads
    inflight = 1 if restorer.info.recurrent else INFLIGHT
    backend = restorer.frames_backend(FrameLayout(w, h, matrix), streams=inflight)
    if backend is None:
        return None
    return I420Path(
        backend, (3 * h // 2, w), restorer.scale, restorer.info.recurrent, inflight=inflight
    )


def choose_frames(
    source: Source, choice: CodecChoice, config: VideoConfig, restorer: Restorer
) -> tuple[I420Path | None, str]:
    """Set the reader's frame format before its first read; (the I420 path or None, the
    format's name for the stats)."""
    i420 = i420_path(source, choice, config, restorer)
    if i420 is not None:
        source.reader.format = "yuv420p"  # the decoder's planes, straight to the network
    elif source.depth > 8 and choice.keeps_10_bit and isinstance(source.reader, AvReader):
        source.reader.format = "bgr48le"  # 16-bit frames through the restorer, 10-bit out
    return i420, getattr(source.reader, "format", "bgr24")
