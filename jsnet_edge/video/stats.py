"""What a video run did: counts, sizes, timings, what was carried over from the input."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

STAGES = ("decode", "infer", "encode", "end_to_end")


@dataclass
class VideoStats:
    """What a run did: counts, sizes, timings, and what was carried over from the input."""

    input: str
    output: str | None
    frames: int = 0  # frames in the output (restored, plus repeats for dropped frames)
    frames_read: int = 0
    frames_restored: int = 0
    frames_expected: int | None = None
    frames_failed: int = 0  # expected but could not be decoded (damaged input)
    frames_dropped: int = 0  # skipped by --realtime because restoration fell behind
    fps: float = 0.0  # the video's frame rate
    input_size: tuple[int, int] = (0, 0)  # width, height as decoded
    output_size: tuple[int, int] = (0, 0)
    rotation: int = 0  # display rotation of the input (degrees counter-clockwise)
    rotation_handling: str = "none"  # "tag copied", "applied to pixels", "none"
    codec: str = ""
    audio_streams: int = 0  # copied (or re-encoded) into the output
    audio_reencoded: int = 0  # of those, re-encoded: the container refused the codec
    metadata_copied: bool = False
    wall_s: float = 0.0
    first_frame_s: float | None = None  # from the start of the process (or of `process`)
    pipeline_fps: float = 0.0
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    model: str = ""  # zoo name or file (`--task` picks by frame size: denoise-rt, denoise-hd)
    backend: str = ""
    precision: str = ""
    device: str = ""
    task: str = ""
    batch: int = 1
    # frames as the network got them: bgr24 (RGB path), bgr48le (10-bit kept), or yuv420p
    # (the decoder's planes straight into an I420 graph: no RGB conversion outside it)
    frame_format: str = "bgr24"
    # a recurrent network read each frame with the previous restored one (the I420 path);
    # at scene cuts it started afresh
    recurrent: bool = False
    scene_cuts: int = 0
    preview: str | None = None
    partial: str | None = None  # where --keep-partial kept an interrupted run's frames
    complete: bool = True
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self, notes: bool = True) -> str:
        """A few lines for people: what was written, how fast, and the per-stage latency
        (`notes=False` where the notes were already shown as they happened)."""
        lines = []
        extra = [f"{self.frames_read} read"]
        if self.frames_expected is not None:
            extra.append(f"{self.frames_expected} expected")
        if self.frames_failed:
            extra.append(f"{self.frames_failed} could not be decoded")
        if self.frames_dropped:
            extra.append(f"{self.frames_dropped} dropped to keep up")
        lines.append(
            f"restored {self.frames_restored} frames ({', '.join(extra)}) in "
            f"{self.wall_s:.1f} s: {self.pipeline_fps:.1f} fps"
        )
        (wi, hi), (wo, ho) = self.input_size, self.output_size
        audio = (
            f"{self.audio_streams} audio stream(s) "
            + ("copied" if not self.audio_reencoded else f"({self.audio_reencoded} re-encoded)")
            if self.audio_streams
            else "no audio"
        )
        lines.append(
            f"video: {wi}x{hi} -> {wo}x{ho} at {self.fps:g} fps, codec {self.codec}, "
            f"{audio}, metadata {'copied' if self.metadata_copied else 'not copied'}, "
            f"rotation {self.rotation} ({self.rotation_handling})"
        )
        if self.first_frame_s is not None:
            lines.append(f"first restored frame after {self.first_frame_s:.2f} s")
        lines.append(
            (f"model {self.model}, " if self.model else "")
            + f"backend: {self.backend} on {self.device}, {self.precision}, "
            f"task {self.task}, batch {self.batch}, frames {self.frame_format}"
            + (f", recurrent ({self.scene_cuts} scene cuts)" if self.recurrent else "")
        )
        lines.append(f"{'latency ms':<12}{'p50':>8}{'p99':>8}")
        for stage in STAGES:
            s = self.latency_ms.get(stage)
            if s:
                lines.append(f"{stage:<12}{s['p50']:>8.1f}{s['p99']:>8.1f}")
        if notes:
            lines += [f"note: {n}" for n in self.notes]
        if self.preview:
            lines.append(f"preview: {self.preview}")
        if self.output:
            lines.append(f"wrote {self.output}" + ("" if self.complete else " (incomplete)"))
        return "\n".join(lines)
