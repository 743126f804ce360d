"""`process`: restore a video file, camera or stream in real time.

A run is a few named steps: check every path before any work (`check_paths`), open the
input and read its first frame (`_open`), run the three stage threads of
`jsnet_edge.video.stages` (decode -> restore -> encode) into temporary files (`_run`), then
finish the output: remux the input's audio and metadata into it and rename it to its final
name (`_finish`). An error or Ctrl-C never leaves a half-written file under the name asked
for.
"""

from __future__ import annotations

import errno
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from jsnet_edge.devices import process_age
from jsnet_edge.errors import OutputWriteError
from jsnet_edge.outputs import commit, write_error_message, write_json
from jsnet_edge.restorer import Restorer
from jsnet_edge.video import stages
from jsnet_edge.video.config import VideoConfig
from jsnet_edge.video.errors import IncompleteVideoError, VideoError
from jsnet_edge.video.formats import choose_frames
from jsnet_edge.video.paths import check_paths
from jsnet_edge.video.preview import preview_size
from jsnet_edge.video.remux import remux
from jsnet_edge.video.source import (
    AV_MISSING,
    Source,
    count_video_packets,
    have_av,
    open_source,
    parse_source,
)
from jsnet_edge.video.stats import VideoStats
from jsnet_edge.video.writers import (
    CodecChoice,
    choose_codec,
    open_writer,
    partial_name,
    temp_beside,
)

WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO, errno.EFBIG)


@dataclass
class _Job:
    """One run: the opened input, the encoders chosen, and what is being learnt."""

    source: Source
    dst: Path
    choice: CodecChoice
    remux_ok: bool  # PyAV writes the final container: rotation tag, faststart, audio
    stats: VideoStats
    first: np.ndarray
    first_pts: int | None
    first_dt: float
    say: Callable[[str], None]
    notes: list[str] = field(default_factory=list)
    temps: list[Path] = field(default_factory=list)
    writers: list = field(default_factory=list)
    video_tmp: Path | None = None
    preview_tmp: Path | None = None
    i420: stages.I420Path | None = None  # the network on the decoder's 4:2:0 frames

    def note(self, msg: str) -> None:
        self.notes.append(msg)
        self.say(msg)

    @property
    def out_size(self) -> tuple[int, int]:
        return self.stats.output_size


def process(
    src: str | int | Path,
    dst: str | Path,
    restorer: Restorer,
    config: VideoConfig | None = None,
    *,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> VideoStats:
    """Restore a video and write it to `dst`, keeping its frame count and rate, rotation,
    audio and container metadata; returns what was done.

    Args:
        src: a video file, a camera index (int or digit string), or an rtsp/http URL.
        dst: the output file; its extension picks the container (.mp4 .mov .mkv .avi .webm).
        restorer: any `Restorer`; frames reach it as OpenCV's BGR uint8.
        config: codec, preview, batching, ... (see `VideoConfig`; default: its defaults).
        progress: show a progress bar on stderr.
        log: where notes (dropped audio, ...) go as they happen; they also go in the stats.

    Raises:
        IncompleteVideoError: the input was damaged; the readable frames were restored and
            the output written (its `stats` says what is missing).
        VideoError, OptionError: unreadable input, unsupported output, bad option.
    """
    age, t_called = process_age(), time.perf_counter()
    dst = Path(dst)
    config = config or VideoConfig()
    check_paths(src, dst, config)
    job = _open(src, dst, restorer, config, log or (lambda _msg: None))
    t_start = time.perf_counter()
    run = stages.Run(
        batch=config.batch,
        realtime=config.realtime,
        max_frames=config.max_frames,
        live=job.source.live,
        want_input=config.preview is not None,
    )
    try:
        interrupted = _run(job, run, restorer, config, progress)
        _account(job, run, config)
        if interrupted or run.errors:
            _keep_or_drop_partial(job, run, config)
            if run.errors:
                e = run.errors[0]
                if isinstance(e, EOFError):  # PyAV's; a CLI would read it as "Aborted."
                    raise VideoError(f"the encoder or decoder stopped early: {e}") from e
                raise e
            raise KeyboardInterrupt
        _finish(job, run, config)
    finally:
        run.stop.set()
        try:
            if not run.started or run.wait_done("encode", timeout=5):
                for wr in job.writers:  # never under a running encoder (it may be mid-frame)
                    try:
                        wr.close()
                    except Exception:  # noqa: BLE001 - already failing; the first error wins
                        pass
        finally:
            # Even when a second Ctrl-C cuts the wait above, or the encoder is stuck: no
            # hidden temporary file is left beside the output (an open one is unlinked
            # too; its space returns when the process ends).
            for t in job.temps:
                try:
                    t.unlink(missing_ok=True)
                except OSError:
                    pass
            if not run.started:
                job.source.reader.release()  # else the decode thread releases it
    stats = job.stats
    stats.wall_s = time.perf_counter() - t_start
    stats.pipeline_fps = stats.frames_restored / stats.wall_s if stats.wall_s > 0 else 0.0
    stats.latency_ms = run.latency_summary()
    if run.first_out is not None:
        stats.first_frame_s = (age or 0.0) + run.first_out - t_called
    stats.notes = job.notes
    if config.stats_path is not None:
        write_json(Path(config.stats_path), stats.to_dict(), overwrite=config.overwrite)
    if not stats.complete:
        raise IncompleteVideoError(
            f"{job.source.name} is damaged: {stats.frames_failed} of "
            f"{stats.frames_expected or stats.frames_read + stats.frames_failed} frames could "
            f"not be decoded; wrote the {stats.frames_read} readable frames to "
            f"{stats.output}, which is incomplete",
            stats,
        )
    return stats


def _open(
    src: str | int | Path,
    dst: Path,
    restorer: Restorer,
    config: VideoConfig,
    say: Callable[[str], None],
) -> _Job:
    """Open the input, read its first frame (which fixes the output size), and describe
    the run in its stats."""
    choice = choose_codec(dst, config.codec, config.crf, config.chroma)
    av_ok = have_av()
    kind, _ = parse_source(src)
    source = open_source(src)
    for n in source.notes:
        say(n)
    stats = VideoStats(
        input=source.name,
        output=None,
        fps=source.fps,
        frames_expected=source.frames_expected,
        rotation=source.rotation,
        codec=choice.name,
        model=restorer.model_name,
        backend=restorer.backend.name,
        precision=restorer.backend.precision,
        device=restorer.backend.device,
        task=restorer.task,
        batch=config.batch,
    )
    if config.max_frames is not None and stats.frames_expected is not None:
        stats.frames_expected = min(stats.frames_expected, config.max_frames)
    stats.rotation_handling = (
        "none" if not source.rotation else "tag copied" if av_ok else "applied to pixels"
    )
    i420, stats.frame_format = choose_frames(source, choice, config, restorer)
    t = time.perf_counter()
    got = source.reader.read()
    first_dt = time.perf_counter() - t
    if got is None:
        source.reader.release()
        raise VideoError(
            f"cannot decode any frame of {source.name}: unsupported codec, or a damaged file"
        )
    first, first_pts = got
    job = _Job(
        source,
        dst,
        choice,
        av_ok,
        stats,
        first,
        first_pts,
        first_dt,
        say,
        list(source.notes),
        i420=i420,
    )
    if restorer.info.recurrent and i420 is None:
        job.note(
            "the recurrent network restores each frame on its own here (its previous frame "
            "is used only on 8-bit 4:2:0 input written lossy 4:2:0, without --preview)"
        )
    if not av_ok:
        job.note(
            f"{AV_MISSING}: the output has video only; the input's audio and container "
            "metadata are dropped"
            + (" and its rotation is applied to the pixels" if source.rotation else "")
        )
    elif kind != "file":
        job.note(f"{source.name} is a live/network source: the output has video only")
    h, w = first.shape[:2]
    if first.ndim == 2:  # I420: 3H/2 rows of planes
        h = h * 2 // 3
    s = restorer.scale
    out_w, out_h = w * s, h * s
    if out_w % 2 or out_h % 2:  # 4:2:0 encoders need even sizes
        job.note(
            f"the restored size {out_w}x{out_h} is odd; the encoder needs even sizes, so "
            f"the last {'column' if out_w % 2 else ''}"
            f"{' and ' if out_w % 2 and out_h % 2 else ''}{'row' if out_h % 2 else ''} "
            "is cropped"
        )
        out_w, out_h = out_w - out_w % 2, out_h - out_h % 2
    stats.input_size, stats.output_size = (w, h), (out_w, out_h)
    return job


def _run(
    job: _Job, run: stages.Run, restorer: Restorer, config: VideoConfig, progress: bool
) -> bool:
    """The three stage threads, into temporary files; True if interrupted (Ctrl-C)."""
    source, rotation = job.source, job.source.rotation if job.remux_ok else 0
    job.video_tmp = temp_beside(job.dst, "video")
    job.temps.append(job.video_tmp)
    writer = open_writer(job.video_tmp, job.choice, source, job.out_size)
    job.writers.append(writer)
    pv_writer = None
    preview_path = config.preview_path
    if preview_path is not None:
        job.preview_tmp = temp_beside(preview_path, "preview")
        job.temps.append(job.preview_tmp)
        size = preview_size(*job.out_size, rotation)
        pv_writer = open_writer(
            job.preview_tmp, choose_codec(preview_path, None, None), source, size
        )
        job.writers.append(pv_writer)
    label = f"restored ({restorer.task})"
    threads = [
        threading.Thread(
            target=run.guard,
            args=("decode", stages.decode, run, source, job.first, job.first_pts, job.first_dt),
            name="jsnet-decode",
            daemon=True,
        ),
        threading.Thread(
            target=run.guard,
            args=(
                "infer",
                stages.infer,
                run,
                restorer,
                job.i420,
                job.i420.inflight if job.i420 else 1,
            ),
            name="jsnet-infer",
            daemon=True,
        ),
        threading.Thread(
            target=run.guard,
            args=(
                "encode",
                stages.encode,
                run,
                writer,
                pv_writer,
                job.out_size,
                rotation,
                label,
                config.window,
            ),
            name="jsnet-encode",
            daemon=True,
        ),
    ]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(
            total=job.stats.frames_expected,
            unit="frame",
            file=sys.stderr,
            dynamic_ncols=True,
            desc=Path(source.name).name[:30],
        )
    try:
        run.started = True
        for t in threads:
            t.start()
        interrupted = stages.wait(run, bar, source.live, job.say, config.window)
        run.stop.set()  # all is done or abandoned: stop what still runs
        if not run.cut:
            run.wait_done("decode", timeout=10)
        for stage in ("infer", "encode"):  # the writers are closed only after the encoder
            run.wait_done(stage)
        for wr in job.writers:
            try:
                wr.close()
            except Exception as e:  # noqa: BLE001 - a stage's error, if any, explains it
                if not run.errors:
                    run.errors.append(
                        e
                        if isinstance(e, VideoError)
                        else VideoError(f"could not finish the video: {e}")
                    )
        job.writers.clear()
        if config.window:
            cv2.destroyAllWindows()
        if bar is not None:
            bar.update(run.written - bar.n)
    finally:
        if bar is not None:
            bar.close()
    return interrupted


def _account(job: _Job, run: stages.Run, config: VideoConfig) -> None:
    """Counts into the stats; an input read short of its expected frames is damaged."""
    stats = job.stats
    stats.frames, stats.frames_read = run.written, run.read
    stats.frames_restored, stats.frames_dropped = run.restored, run.dropped
    if job.i420 is not None and job.i420.recurrent:
        stats.recurrent, stats.scene_cuts = True, job.i420.cuts
    expected = stats.frames_expected
    short = 0
    if (
        expected is not None
        and run.read < expected
        and (job.source.frames_exact or expected - run.read > 2)
    ):
        short = expected - run.read
    failures = job.source.reader.failures  # damaged packets the decoder skipped
    if short or failures:
        stats.frames_failed = max(short, failures)
        stats.complete = False


def _keep_or_drop_partial(job: _Job, run: stages.Run, config: VideoConfig) -> None:
    """After an error or Ctrl-C: keep what was written as NAME.partial.EXT, or nothing."""
    if config.keep_partial and run.written:
        part = partial_name(job.dst, taken_ok=config.overwrite)
        commit(job.video_tmp, part, overwrite=config.overwrite)
        job.stats.partial = str(part)
        job.say(f"kept the {run.written} frames written so far in {part} (video only)")
    elif run.written:
        job.say("removed the unfinished output (--keep-partial keeps it)")


def _check_written(path: Path, frames: int, what: str) -> None:
    """The encoder and muxer report few write errors (OpenCV none): a file that does not
    hold every frame given to it was not written, whatever the writer said. Mostly a full
    disk, which is then named."""
    found = count_video_packets(path)
    if found is None or found >= frames:
        return
    free = shutil.disk_usage(path.parent).free
    cause = (
        "the disk is full; free some space or write elsewhere"
        if free < 64 * 2**20
        else "the encoder or the disk failed"
    )
    held = "no readable video" if found < 0 else f"{found} of {frames} frames"
    raise OutputWriteError(f"could not write the {what}: it holds {held}; {cause}")


def _is_write_error(e: BaseException) -> bool:
    return getattr(e, "errno", None) in WRITE_ERRNOS or isinstance(e, OutputWriteError)


def _finish(job: _Job, run: stages.Run, config: VideoConfig) -> None:
    """Complete (or a damaged input, read to its end): check that the video holds every
    frame, remux the input's audio and metadata into it where PyAV can, and rename it to
    its final name (`NAME.partial.EXT` for a damaged input, which is then an error)."""
    stats, source = job.stats, job.source
    if run.written == 0:
        raise VideoError(f"no frame of {source.name} could be restored")
    _check_written(job.video_tmp, run.written, "restored video")
    trim = None
    if config.max_frames is not None or not stats.complete:
        trim = run.written / source.fps
    final_tmp = job.video_tmp
    if job.remux_ok:
        final_tmp = temp_beside(job.dst, "mux")
        job.temps.append(final_tmp)
        try:
            res = remux(
                job.video_tmp,
                source.path,
                final_tmp,
                rotation=source.rotation,
                trim_audio_s=trim,
                rate=source.rate,
                retime=job.choice.library == "opencv",
            )
            _check_written(final_tmp, run.written, "restored video")
        except Exception as e:
            if _is_write_error(e):  # the disk, not the audio: the output cannot be made
                raise (
                    e
                    if isinstance(e, OutputWriteError)
                    else OutputWriteError(write_error_message(job.dst, e))
                ) from None
            job.note(  # audio or metadata trouble must not lose the video
                f"could not copy the input's audio and metadata ({type(e).__name__}: "
                f"{e}); the output has video only"
            )
            final_tmp = job.video_tmp
            stats.rotation_handling = "lost" if source.rotation else "none"
        else:
            stats.audio_streams = res.audio_copied + res.audio_transcoded
            stats.audio_reencoded = res.audio_transcoded
            stats.metadata_copied = res.metadata_copied and source.path is not None
            if source.rotation and not res.rotation:
                stats.rotation_handling = "lost"
            for n in res.notes:
                job.note(n)
    dst = job.dst if stats.complete else partial_name(job.dst, taken_ok=config.overwrite)
    commit(final_tmp, dst, overwrite=config.overwrite)
    preview_path = config.preview_path
    if preview_path is not None:
        _check_written(job.preview_tmp, run.written, "preview")
        commit(job.preview_tmp, preview_path, overwrite=config.overwrite)
        stats.preview = str(preview_path)
    stats.output = str(dst)
