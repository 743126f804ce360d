"""`process`: restore a video file, camera or stream in real time.

Three threads, one per stage (decode -> restore -> encode), joined by small bounded queues:
the stages overlap (OpenCV and torch release the GIL while they work), and memory stays
that of a few frames for a video of any length. Every wait has a timeout and checks a stop
flag, so an error in any stage, or Ctrl-C, stops all of them promptly; the first error is
re-raised in the caller's thread.

The output is written beside its final name and renamed there only once complete: an error
or Ctrl-C never leaves a half-written file under the name asked for.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from jsnet_edge.errors import OptionError
from jsnet_edge.video import io
from jsnet_edge.video.errors import IncompleteVideoError, VideoError
from jsnet_edge.video.stream import restore_frames

if TYPE_CHECKING:
    from jsnet_edge.restorer import Restorer

STAGES = ("decode", "infer", "encode", "end_to_end")
_END = object()  # the sentinel that ends a queue
_POLL = 0.1  # seconds between checks of the stop flag


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
    pipeline_fps: float = 0.0
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    backend: str = ""
    precision: str = ""
    device: str = ""
    task: str = ""
    batch: int = 1
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
        lines.append(
            f"backend: {self.backend} on {self.device}, {self.precision}, "
            f"task {self.task}, batch {self.batch}"
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


def default_output(src: str | int | Path) -> Path:
    """`IN_restored.mp4` beside a file input; `cameraN_restored.mp4` here for a camera."""
    kind, what = io.parse_source(src)
    if kind == "file":
        p = Path(what)
        return p.with_name(f"{p.stem}_restored.mp4")
    if kind == "camera":
        return Path(f"camera{what}_restored.mp4")
    raise OptionError(f"give an output file (-o) for the stream {what}")


def check_paths(
    src: str | int | Path,
    dst: str | Path,
    *,
    overwrite: bool = False,
    preview: str | Path | None = None,
    stats_path: str | Path | None = None,
    codec: str | None = None,
    crf: int | None = None,
) -> None:
    """Refuse, before any work (loading a model takes seconds), an input file that cannot
    be read, outputs that would overwrite the input or an existing file, and containers or
    codecs we cannot write."""
    kind, what = io.parse_source(src)
    inputs = [Path(what)] if kind == "file" else []
    if kind == "file":
        io.open_file(Path(what)).release()
    dst = Path(dst)
    io.check_output(dst, inputs, overwrite=overwrite)
    io.choose_codec(dst, codec, crf)
    if preview is not None and str(preview) == "window" and not has_gui():
        raise OptionError(
            "this OpenCV has no GUI (opencv-python-headless), so it cannot show "
            "a preview window; give --preview a file (e.g. preview.mp4)"
        )
    if preview is not None and str(preview) != "window":
        io.check_output(Path(preview), inputs + [dst], overwrite=overwrite, what="preview")
    if stats_path is not None:
        io.check_output(Path(stats_path), inputs + [dst], overwrite=True, what="stats file")


def process(
    src: str | int | Path,
    dst: str | Path,
    restorer: Restorer,
    *,
    batch: int = 1,
    codec: str | None = None,
    crf: int | None = None,
    preview: str | Path | None = None,
    stats_path: str | Path | None = None,
    realtime: bool = False,
    max_frames: int | None = None,
    overwrite: bool = False,
    keep_partial: bool = False,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> VideoStats:
    """Restore a video and write it to `dst`, keeping its frame count and rate, rotation,
    audio and container metadata; returns what was done.

    Args:
        src: a video file, a camera index (int or digit string), or an rtsp/http URL.
        dst: the output file; its extension picks the container (.mp4 .mov .mkv .avi .webm).
        restorer: any `Restorer`; frames reach it as OpenCV's BGR uint8.
        batch: frames per backend call (larger helps GPUs; costs latency).
        codec: an OpenCV fourcc (mp4v, the .mp4 default; MJPG for .avi; XVID ...) or,
            with PyAV, an FFmpeg encoder such as libx264 (smaller, better; takes `crf`).
        crf: quality of PyAV encoders (libx264: 0 lossless .. 51; default 18).
        preview: a file for a side-by-side video (input | restored), or "window" to show
            one where OpenCV has a GUI.
        stats_path: write the summary as JSON there.
        realtime: for live sources: when restoration falls behind, drop the oldest waiting
            frames (the newest is always restored); a dropped frame repeats the previous
            restored one in the output, so timing and audio stay in sync. A file is then
            read at its own frame rate, as if live.
        max_frames: stop after this many frames (cameras never end on their own).
        overwrite: replace an existing `dst`.
        keep_partial: after an error or Ctrl-C, keep the frames written so far as
            `NAME.partial.EXT` (otherwise nothing is left behind).
        progress: show a progress bar on stderr.
        log: where notes (dropped audio, ...) go as they happen; they also go in the stats.

    Raises:
        IncompleteVideoError: the input was damaged; the readable frames were restored and
            the output written (its `stats` says what is missing).
        VideoError, OptionError: unreadable input, unsupported output, bad option.
    """
    if batch < 1:
        raise OptionError(f"batch must be at least 1, got {batch}")
    if max_frames is not None and max_frames < 1:
        raise OptionError(f"max_frames must be at least 1, got {max_frames}")
    say = log or (lambda _msg: None)
    dst = Path(dst)
    window = preview is not None and str(preview) == "window"
    check_paths(
        src, dst, overwrite=overwrite, preview=preview, stats_path=stats_path, codec=codec, crf=crf
    )
    choice = io.choose_codec(dst, codec, crf)
    preview_path = None if window or preview is None else Path(preview)
    preview_choice = io.choose_codec(preview_path, None, None) if preview_path else None
    av_ok = io.have_av()
    kind, _ = io.parse_source(src)
    remux_ok = av_ok  # PyAV writes the final container: rotation tag, faststart, audio
    source = io.open_source(src, bake_rotation=not remux_ok)
    notes = list(source.notes)
    for n in notes:
        say(n)

    def note(msg: str) -> None:
        notes.append(msg)
        say(msg)

    if not av_ok:
        note(
            f"{io.AV_MISSING}: the output has video only; the input's audio and container "
            "metadata are dropped"
            + (" and its rotation is applied to the pixels" if source.rotation else "")
        )
    elif kind != "file":
        note(f"{source.name} is a live/network source: the output has video only")

    stats = VideoStats(
        input=source.name,
        output=None,
        fps=source.fps,
        frames_expected=source.frames_expected,
        rotation=source.rotation,
        codec=choice.name,
        backend=restorer.backend.name,
        precision=restorer.backend.precision,
        device=restorer.backend.device,
        task=restorer.task,
        batch=batch,
    )
    if max_frames is not None and stats.frames_expected is not None:
        stats.frames_expected = min(stats.frames_expected, max_frames)
    stats.rotation_handling = (
        "none" if not source.rotation else "tag copied" if remux_ok else "applied to pixels"
    )

    t = time.perf_counter()
    ok, first = source.cap.read()
    first_dt = time.perf_counter() - t
    if not ok or first is None:
        source.cap.release()
        raise VideoError(
            f"cannot decode any frame of {source.name}: unsupported codec, or a damaged file"
        )
    h, w = first.shape[:2]
    s = restorer.scale
    out_w, out_h = w * s, h * s
    if out_w % 2 or out_h % 2:  # 4:2:0 encoders need even sizes
        note(
            f"the restored size {out_w}x{out_h} is odd; the encoder needs even sizes, so "
            f"the last {'column' if out_w % 2 else ''}"
            f"{' and ' if out_w % 2 and out_h % 2 else ''}{'row' if out_h % 2 else ''} "
            "is cropped"
        )
        out_w, out_h = out_w - out_w % 2, out_h - out_h % 2
    stats.input_size, stats.output_size = (w, h), (out_w, out_h)

    temps: list[Path] = []
    writers: list = []
    run = _Run(
        batch=batch,
        realtime=realtime,
        max_frames=max_frames,
        live=source.live,
        want_input=preview is not None,
    )
    started = False
    bar = None
    t_start = time.perf_counter()
    try:
        video_tmp = io.temp_beside(dst, "video")
        temps.append(video_tmp)
        writer = io.open_writer(video_tmp, choice, source, (out_w, out_h))
        writers.append(writer)
        pv_writer = None
        if preview_path is not None:
            pv_tmp = io.temp_beside(preview_path, "preview")
            temps.append(pv_tmp)
            pw, ph = _preview_size(out_w, out_h, source.rotation if remux_ok else 0)
            pv_writer = io.open_writer(pv_tmp, preview_choice, source, (pw, ph))
            writers.append(pv_writer)
        label = f"restored ({restorer.task})"
        threads = [
            threading.Thread(
                target=run.guard,
                args=("decode", _decode, run, source, first, first_dt),
                name="jsnet-decode",
                daemon=True,
            ),
            threading.Thread(
                target=run.guard,
                args=("infer", _infer, run, restorer),
                name="jsnet-infer",
                daemon=True,
            ),
            threading.Thread(
                target=run.guard,
                args=(
                    "encode",
                    _encode,
                    run,
                    writer,
                    pv_writer,
                    (out_w, out_h),
                    source.rotation if remux_ok else 0,
                    label,
                    window,
                ),
                name="jsnet-encode",
                daemon=True,
            ),
        ]
        if progress:
            from tqdm import tqdm

            bar = tqdm(
                total=stats.frames_expected,
                unit="frame",
                file=sys.stderr,
                dynamic_ncols=True,
                desc=Path(source.name).name[:30],
            )
        started = True
        for t in threads:
            t.start()
        interrupted = _wait(threads, run, bar, source.live, say, window)
        for t in threads:
            t.join(timeout=10 if t.name == "jsnet-decode" else None)
        for wr in writers:
            try:
                wr.close()
            except Exception as e:  # noqa: BLE001 - a stage's error, if any, explains it
                if not run.errors:
                    run.errors.append(
                        e
                        if isinstance(e, VideoError)
                        else VideoError(f"could not finish the video: {e}")
                    )
        writers.clear()
        if window:
            cv2.destroyAllWindows()
        if bar is not None:
            bar.update(run.written - bar.n)
            bar.close()
            bar = None
        stats.frames, stats.frames_read = run.written, run.read
        stats.frames_restored, stats.frames_dropped = run.restored, run.dropped
        if interrupted or run.errors:
            if keep_partial and run.written:
                part = io.partial_name(dst)
                os.replace(video_tmp, part)
                stats.partial = str(part)
                say(f"kept the {run.written} frames written so far in {part} (video only)")
            elif run.written:
                say("removed the unfinished output (--keep-partial keeps it)")
            if run.errors:
                raise run.errors[0]
            raise KeyboardInterrupt
        # Complete (or damaged input, read to its end): finish the file.
        if run.written == 0:
            raise VideoError(f"no frame of {source.name} could be restored")
        trim = None
        expected = stats.frames_expected
        if (
            expected is not None
            and run.read < expected
            and (source.frames_exact or expected - run.read > 2)
        ):
            stats.frames_failed = expected - run.read
            stats.complete = False
        if max_frames is not None or not stats.complete:
            trim = run.written / source.fps
        if remux_ok:
            final_tmp = io.temp_beside(dst, "mux")
            temps.append(final_tmp)
            try:
                res = io.remux(
                    video_tmp,
                    source.path,
                    final_tmp,
                    rotation=source.rotation,
                    trim_audio_s=trim,
                    rate=source.rate if choice.library == "opencv" else None,
                )
            except Exception as e:  # audio or metadata trouble must not lose the video
                note(
                    f"could not copy the input's audio and metadata ({type(e).__name__}: "
                    f"{e}); the output has video only"
                )
                final_tmp = video_tmp
                stats.rotation_handling = "lost" if source.rotation else "none"
            else:
                stats.audio_streams = res.audio_copied + res.audio_transcoded
                stats.audio_reencoded = res.audio_transcoded
                stats.metadata_copied = res.metadata_copied and source.path is not None
                for n in res.notes:
                    note(n)
            os.replace(final_tmp, dst)
        else:
            os.replace(video_tmp, dst)
        if preview_path is not None:
            os.replace(pv_tmp, preview_path)
            stats.preview = str(preview_path)
        stats.output = str(dst)
    finally:
        if bar is not None:
            bar.close()
        run.stop.set()
        for wr in writers:
            try:
                wr.close()
            except Exception:  # noqa: BLE001 - already failing; the first error wins
                pass
        for t in temps:
            if t.exists():
                t.unlink()
        if not started:
            source.cap.release()  # else the decode thread releases it
    stats.wall_s = time.perf_counter() - t_start
    stats.pipeline_fps = stats.frames_restored / stats.wall_s if stats.wall_s > 0 else 0.0
    stats.latency_ms = run.latency_summary()
    stats.notes = notes
    if stats_path is not None:
        write_json_atomic(Path(stats_path), stats.to_dict())
    if not stats.complete:
        raise IncompleteVideoError(
            f"{source.name} is damaged: {stats.frames_failed} of {stats.frames_expected} "
            f"frames could not be decoded; wrote the {stats.frames_read} readable frames to "
            f"{dst}, which is incomplete",
            stats,
        )
    return stats


def write_json_atomic(path: Path, data: dict) -> None:
    """JSON written beside `path` and renamed: readers never see half a file."""
    tmp = io.temp_beside(path, "tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def has_gui() -> bool:
    """Whether this OpenCV build can open windows (opencv-python-headless cannot)."""
    info = cv2.getBuildInformation()
    i = info.find("GUI:")
    return i >= 0 and not info[i + 4 :].lstrip().upper().startswith("NONE")


# --- the stages -----------------------------------------------------------------------------


class _Run:
    """State shared by the three stage threads and the caller's thread."""

    def __init__(
        self, *, batch: int, realtime: bool, max_frames: int | None, live: bool, want_input: bool
    ) -> None:
        self.batch, self.realtime, self.max_frames = batch, realtime, max_frames
        self.live, self.want_input = live, want_input
        size = max(1, batch) if realtime else max(2, 2 * batch)
        self.q_in: queue.Queue = queue.Queue(maxsize=size)
        self.q_out: queue.Queue = queue.Queue(maxsize=max(2, 2 * batch))
        self.stop = threading.Event()  # abort everything
        self.capture_stop = threading.Event()  # stop reading, finish what was read
        self.errors: list[BaseException] = []
        self.read = self.restored = self.written = self.dropped = 0
        self.lat: dict[str, list[float]] = {k: [] for k in STAGES}
        self.latest_preview: np.ndarray | None = None

    def guard(self, stage: str, fn, *args) -> None:
        try:
            fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            if not self.stop.is_set() or not self.errors:
                self.errors.append(e)
            self.stop.set()

    def put(self, q: queue.Queue, item) -> bool:
        while not self.stop.is_set():
            try:
                q.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def get(self, q: queue.Queue, block: bool = True):
        """The next item, `_END` at the end, or None when stopping (or nothing waiting)."""
        while not self.stop.is_set():
            try:
                return q.get(timeout=_POLL) if block else q.get_nowait()
            except queue.Empty:
                if not block:
                    return None
        return None

    def latency_summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for k, v in self.lat.items():
            if v:
                a = np.asarray(v) * 1000.0
                out[k] = {
                    "p50": float(np.percentile(a, 50)),
                    "p99": float(np.percentile(a, 99)),
                    "mean": float(a.mean()),
                    "n": len(v),
                }
        return out


def _decode(run: _Run, source: io.Source, first: np.ndarray, first_dt: float) -> None:
    cap = source.cap
    pace = run.realtime and not source.live  # a file read as if live
    t0 = time.perf_counter()
    frame, dt = first, first_dt
    try:
        while True:
            item = (run.read, frame, time.perf_counter())
            run.lat["decode"].append(dt)
            run.read += 1
            if run.realtime:
                _put_newest(run, item)
            elif not run.put(run.q_in, item):
                return
            if run.stop.is_set() or run.capture_stop.is_set():
                break
            if run.max_frames is not None and run.read >= run.max_frames:
                break
            if pace:
                wait = t0 + run.read / source.fps - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            t = time.perf_counter()
            ok, frame = cap.read()
            dt = time.perf_counter() - t
            if not ok or frame is None:
                break
    finally:
        cap.release()
        run.put(run.q_in, _END)


def _put_newest(run: _Run, item) -> None:
    """Queue `item`; if the queue is full, drop the oldest waiting frame (realtime)."""
    while not run.stop.is_set():
        try:
            run.q_in.put_nowait(item)
            return
        except queue.Full:
            try:
                run.q_in.get_nowait()
                run.dropped += 1
            except queue.Empty:
                pass


def _infer(run: _Run, restorer: Restorer) -> None:
    try:
        done = False
        while not done:
            item = run.get(run.q_in)
            if item is None:
                return  # stopping
            if item is _END:
                break
            items = [item]
            while len(items) < run.batch:  # fill the batch with what is (or soon is) there
                nxt = run.get(run.q_in, block=not run.realtime)
                if nxt is None:
                    if run.stop.is_set():
                        return
                    break  # realtime: nothing waiting, go with what we have
                if nxt is _END:
                    done = True
                    break
                items.append(nxt)
            t = time.perf_counter()
            outs = restore_frames(restorer, [it[1] for it in items], color_order="bgr")
            dt = (time.perf_counter() - t) / len(items)
            run.lat["infer"] += [dt] * len(items)
            for (idx, frame, t_dec), out in zip(items, outs, strict=True):
                run.restored += 1
                if not run.put(run.q_out, (idx, frame if run.want_input else None, out, t_dec)):
                    return
    finally:
        run.put(run.q_out, _END)


def _encode(
    run: _Run, writer, pv_writer, size: tuple[int, int], rotation: int, label: str, window: bool
) -> None:
    w, h = size
    last, prev = -1, None
    while True:
        item = run.get(run.q_out)
        if item is None or item is _END:
            return
        idx, frame, out, t_dec = item
        if out.shape[:2] != (h, w):
            oh, ow = out.shape[:2]
            if 0 <= oh - h <= 1 and 0 <= ow - w <= 1:  # odd size: crop to even
                out = np.ascontiguousarray(out[:h, :w])
            else:  # the stream changed size mid-way: the file cannot
                out = cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA)
        t = time.perf_counter()
        for _ in range(idx - last - 1):  # frames dropped by --realtime: repeat, keep timing
            writer.write(prev if prev is not None else out)
            run.written += 1
        writer.write(out)
        run.written += 1
        if pv_writer is not None or window:
            side = side_by_side(frame, out, rotation, label)
            if pv_writer is not None:
                pv_writer.write(side)
            if window:
                run.latest_preview = side
        run.lat["encode"].append(time.perf_counter() - t)
        run.lat["end_to_end"].append(time.perf_counter() - t_dec)
        last, prev = idx, out


def _wait(
    threads: list[threading.Thread],
    run: _Run,
    bar,
    live: bool,
    say: Callable[[str], None],
    window: bool,
) -> bool:
    """Wait for the stages, updating the bar; True if interrupted (Ctrl-C).

    For a live source the first Ctrl-C ends the capture and finishes the output normally
    (a camera has no other end); a second one aborts.
    """
    while any(t.is_alive() for t in threads):
        try:
            threads[-1].join(timeout=_POLL)
            if bar is not None and run.written > bar.n:
                bar.update(run.written - bar.n)
            if window and run.latest_preview is not None:
                cv2.imshow("jsnet-edge preview", run.latest_preview)
                cv2.waitKey(1)
            if run.errors:
                run.stop.set()
        except KeyboardInterrupt:
            if live and not run.capture_stop.is_set():
                run.capture_stop.set()
                say("stopping the capture and finishing the output (Ctrl-C again to abort)")
                continue
            run.stop.set()
            return True
    return False


# --- preview ----------------------------------------------------------------------------------


def _preview_size(w: int, h: int, rotation: int) -> tuple[int, int]:
    if rotation % 180:
        w, h = h, w
    return 2 * w, h


def side_by_side(frame: np.ndarray, out: np.ndarray, rotation: int, label: str) -> np.ndarray:
    """Input (bicubic to the output size) | restored, labelled, turned upright."""
    h, w = out.shape[:2]
    left = frame
    if left.shape[:2] != (h, w):
        left = cv2.resize(left, (w, h), interpolation=cv2.INTER_CUBIC)
    name = "input (bicubic)" if frame.shape[:2] != (h, w) else "input"
    if rotation:
        k = (rotation // 90) % 4
        left, out = np.rot90(left, k), np.rot90(out, k)
    side = np.ascontiguousarray(np.concatenate([left, out], axis=1))
    scale = max(0.35, side.shape[0] / 720)
    for text, x in ((name, 0), (label, side.shape[1] // 2)):
        org = (x + int(8 * scale) + 2, int(24 * scale) + 6)
        cv2.putText(
            side,
            text,
            org,
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (0, 0, 0),
            max(2, int(4 * scale)),
            cv2.LINE_AA,
        )
        cv2.putText(
            side,
            text,
            org,
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            max(1, int(1.5 * scale)),
            cv2.LINE_AA,
        )
    return side
