"""Remuxing: the encoded video with the input's audio and container metadata, by stream
copy (no re-encoding of either), into the final container (PyAV)."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from jsnet_edge.video.source import colour_tags

# Container tags that describe the file itself, not its content: the muxer writes its own.
TECHNICAL_TAGS = ("major_brand", "minor_version", "compatible_brands", "encoder")


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
    retime: bool = False,
) -> RemuxResult:
    """Mux the encoded `video` with the audio streams and container metadata of `source`
    into `out`: packets are copied, not re-encoded (an audio codec the output container
    cannot hold is re-encoded, and said). The rotation tag is set before anything is
    written: it is lost if set after the first packet (av 18).

    trim_audio_s: drop audio that starts after this time (the video was cut short).
    rate: the exact (average) frame rate: declared in the output (a copied stream's rate
        field comes out garbled for non-integer rates: 30000/1001 as 30000).
    retime: the encoder rounded the rate (OpenCV writes 30000/1001 as 2997/100): video
        timestamps are rewritten to `rate`, packets still copied. Only for constant-rate
        video without frame reordering (OpenCV's encoders): timestamps become frame numbers.
    """
    import av

    try:
        return _remux(
            video, source, out, rotation, trim_audio_s, rate, retime, transcode_audio=False
        )
    except (av.FFmpegError, ValueError):
        if source is None:
            raise
    # e.g. pcm audio, which mp4 lists as supported but refuses: re-encode the audio
    return _remux(video, source, out, rotation, trim_audio_s, rate, retime, transcode_audio=True)


def _remux(
    video: Path,
    source: Path | None,
    out: Path,
    rotation: int,
    trim_audio_s: float | None,
    rate: Fraction | None,
    retime_to_rate: bool,
    *,
    transcode_audio: bool,
) -> RemuxResult:
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
                if retime_to_rate and iv.average_rate and Fraction(iv.average_rate) != rate:
                    retime = (Fraction(iv.average_rate), rate)
                    ov.time_base = 1 / rate
            if rotation:
                ov.set_display_rotation(rotation)
            audio: dict[int, tuple] = {}
            offset = 0.0
            given = _video_info(src) if src is not None and src.streams.video else None
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
        wanted = dict(oc.metadata)
    finally:
        tv.close()
        if src is not None:
            src.close()
    _read_back(out, wanted, given, res)
    return res


_COLOUR_NAMES = {
    ("color_primaries", 1): "bt709",
    ("color_primaries", 9): "bt2020",
    ("color_trc", 1): "bt709",
    ("color_trc", 16): "PQ",
    ("color_trc", 18): "HLG",
    ("colorspace", 1): "bt709",
    ("colorspace", 9): "bt2020nc",
}


def _video_info(c) -> dict:
    """What a file's video is: streams, bit depth, alpha, colour tags."""
    import av

    v = c.streams.video[0]
    fmt = av.VideoFormat(v.codec_context.pix_fmt or "yuv420p")
    return {
        "streams": len(c.streams.video),
        "pix_fmt": fmt.name,
        "depth": max(x.bits for x in fmt.components),
        # VP9/VP8 keep alpha beside the picture: FFmpeg's decoder shows yuv420p
        "alpha": any(x.is_alpha for x in fmt.components) or v.metadata.get("alpha_mode") == "1",
        "colour": colour_tags(v.codec_context),
    }


def _conversions(given: dict, got: dict) -> list[str]:
    """One line for each thing of the input's video that the output does not hold."""
    notes = []
    if given["depth"] > got["depth"]:
        notes.append(
            f"the input's {given['depth']}-bit video ({given['pix_fmt']}) was restored and "
            f"written as {got['depth']}-bit ({got['pix_fmt']})"
        )
    lost = [
        f"{k}={_COLOUR_NAMES.get((k, v), v)}"
        for k, v in given["colour"].items()
        if got["colour"].get(k) != v
    ]
    if lost:
        notes.append(
            f"the output does not declare the input's colour tags ({', '.join(lost)}): "
            "players may show other colours"
        )
    if given["alpha"] and not got["alpha"]:
        notes.append("the input's alpha channel (transparency) was dropped: the output is opaque")
    if given["streams"] > 1:
        notes.append(
            f"the input has {given['streams']} video streams: only the first was restored; "
            f"the other {given['streams'] - 1} are not in the output"
        )
    return notes


def _read_back(out: Path, wanted: dict[str, str], given: dict | None, res: RemuxResult) -> None:
    """Claim only what the written file holds: containers drop what they cannot store
    without a word (AVI keeps no rotation tag and few tags), and the restored video is
    8-bit, opaque, one stream."""
    import av

    with av.open(str(out)) as c:
        held = {k.lower() for k in c.metadata}
        if given is not None:
            res.notes += _conversions(given, _video_info(c))
        rotation = 0
        if res.rotation:
            first = next(c.decode(video=0), None)
            rotation = getattr(first, "rotation", 0) if first is not None else 0
        fmt = c.format.name
    dropped = [k for k in wanted if k.lower() not in held]
    if dropped:
        res.metadata_copied = len(dropped) < len(wanted)
        res.notes.append(f"{fmt} files cannot hold the input's tag(s) {', '.join(dropped)}")
    if res.rotation and rotation != res.rotation:
        res.notes.append(
            f"{fmt} files cannot hold the rotation tag ({res.rotation} degrees): the output "
            "plays unrotated (.mp4, .mov and .mkv keep it)"
        )
        res.rotation = 0


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
        rate = ia.codec_context.sample_rate or 48000
        rates, resampled = codec.audio_rates, ""  # None: any rate
        if rates and rate not in rates:  # libopus: 48 kHz and fractions of it only
            new = min(rates, key=lambda r: (r < rate, abs(r - rate)))
            resampled = f", resampled from {rate} Hz to {new} Hz"
            rate = new  # the encoder resamples the decoded frames
        oa = oc.add_stream(target, rate=rate)
        # A layout without a channel order ("2 channels", as pcm in mkv has) is refused by
        # encoders: name the usual one for the channel count.
        n = ia.codec_context.layout.nb_channels if ia.codec_context.layout else 2
        oa.layout = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 8: "7.1"}.get(
            n, "stereo"
        )
        res.audio_transcoded += 1
        res.notes.append(
            f"the input's {name} audio cannot go into {oc.format.name} "
            f"as it is; re-encoded it as {target}{resampled}"
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
