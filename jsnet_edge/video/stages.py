"""The three stages of the video pipeline (decode -> restore -> encode), each run in its own
thread and joined by small bounded queues: the stages overlap (OpenCV and the runtimes
release the GIL while they work), and memory stays that of a few frames for a video of any
length. Every wait has a timeout and checks a stop flag, so an error in any stage, or
Ctrl-C, stops all of them promptly; the first error is handed to the caller's thread."""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from jsnet_edge.motion import block_means, global_shift, is_scene_cut, shifted_i420, thumbnail
from jsnet_edge.restorer import Restorer, restore_frames
from jsnet_edge.runtime.backend import Backend
from jsnet_edge.video.preview import side_by_side
from jsnet_edge.video.source import Source
from jsnet_edge.video.stats import STAGES

_END = object()  # the sentinel that ends a queue
_POLL = 0.1  # seconds between checks of the stop flag
STALL_S = 3.0  # after a live capture is stopped, how long a read may block before it is cut


class Run:
    """State shared by the three stage threads and the caller's thread."""

    def __init__(
        self, *, batch: int, realtime: bool, max_frames: int | None, live: bool, want_input: bool
    ) -> None:
        self.batch, self.realtime, self.max_frames = batch, realtime, max_frames
        self.live, self.want_input = live, want_input
        size = max(1, batch) if realtime else max(2, 2 * batch)
        self.q_in: queue.Queue = queue.Queue(maxsize=size)
        self.q_out: queue.Queue = queue.Queue(maxsize=max(2, 2 * batch))
        self.started = False  # the threads were started (the decode thread owns the capture)
        self.stop = threading.Event()  # abort everything
        self.capture_stop = threading.Event()  # stop reading, finish what was read
        self.errors: list[BaseException] = []
        self.read = self.restored = self.written = self.dropped = 0
        self.pts: list[int | None] = []  # timestamp of each frame read, by index
        self.first_out: float | None = None  # when the first restored frame was written
        self.lat: dict[str, list[float]] = {k: [] for k in STAGES}
        self.latest_preview: np.ndarray | None = None
        # Set when a stage's thread has finished. The caller's thread waits on these, never
        # on Thread.join: in Python 3.11 a Ctrl-C landing in join() can mark a thread that
        # is still running as finished, and the output was then closed under the encoder.
        self.done = {k: threading.Event() for k in ("decode", "infer", "encode")}
        self.reading_since: float | None = None  # the decoder is blocked in a read since
        self.capture_stop_at: float | None = None
        self.cut = False  # the capture was ended without the decoder (a stalled read)

    def guard(self, stage: str, fn, *args) -> None:
        try:
            fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            if not self.stop.is_set() or not self.errors:
                self.errors.append(e)
            self.stop.set()
        finally:
            self.done[stage].set()

    def finished(self, *stages: str) -> bool:
        return all(self.done[k].is_set() for k in stages or self.done)

    def wait_done(self, stage: str, timeout: float | None = None) -> bool:
        """Wait (interruptibly, in short steps) for a stage to finish; False on timeout."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self.done[stage].wait(_POLL):
            if end is not None and time.monotonic() >= end:
                return False
        return True

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


def decode(
    run: Run, source: Source, first: np.ndarray, first_pts: int | None, first_dt: float
) -> None:
    reader = source.reader
    pace = run.realtime and not source.live  # a file read as if live
    t0 = time.perf_counter()
    frame, pts, dt = first, first_pts, first_dt
    try:
        while True:
            item = (run.read, frame, time.perf_counter())
            run.pts.append(pts)  # every frame read, dropped or not: the encoder's timing
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
            run.reading_since = time.monotonic()
            got = reader.read()
            run.reading_since = None
            dt = time.perf_counter() - t
            if run.capture_stop.is_set() and run.live:
                break  # stopped while reading; the stream may have been cut already
            if got is None:
                break
            frame, pts = got
    finally:
        reader.release()
        run.put(run.q_in, _END)


def _put_newest(run: Run, item) -> None:
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


@dataclass
class I420Path:
    """The network on the decoder's own frames: an I420 graph and the frame shape it takes
    (3H/2 x W, FFmpeg's planar layout). A recurrent network's graph also takes the previous
    restored frame, moved by the camera's motion (`jsnet_edge.motion`): frames then go
    through one at a time, in order (`inflight` 1), and the last output is kept here
    between calls."""

    backend: Backend
    shape: tuple[int, int]
    scale: int
    recurrent: bool = False
    inflight: int = 1  # batches restored at once (each by its own runtime stream)
    cuts: int = 0  # scene cuts at which the recurrence started afresh
    _prev: np.ndarray | None = None  # the last restored frame (float32, as the graph gave it)
    _prev_luma: np.ndarray | None = None  # its input's block means
    _prev_thumb: tuple | None = None  # its input's `thumbnail` (the camera's motion)

    def __call__(self, restorer: Restorer, frames: list[np.ndarray]) -> list[np.ndarray]:
        """Restored I420 frames (uint8). A frame of another size (a stream that changed
        size mid-way) goes the RGB way and is resized to the output's size, as the RGB
        path does."""
        outs = []
        for f in frames:
            if f.shape == self.shape:
                outs.append(self._restore(f).astype(np.uint8))
                continue
            self._prev = self._prev_luma = None
            bgr = restorer(cv2.cvtColor(f, cv2.COLOR_YUV2BGR_I420))
            w, h = self.shape[1] * self.scale, self.shape[0] * 2 // 3 * self.scale
            bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)
            outs.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420))
        return outs

    def _restore(self, f: np.ndarray) -> np.ndarray:
        x = f.astype(np.float32)
        if not self.recurrent:
            return self.backend(x[None, None])[0, 0]
        h = self.shape[0] * 2 // 3
        luma, thumb = block_means(f[:h]), thumbnail(f[:h])
        prev = self._prev
        if prev is not None and is_scene_cut(self._prev_luma, luma):
            prev = None
            self.cuts += 1
        if prev is not None:  # moved by the camera's motion, as in training
            prev = shifted_i420(prev, h, *global_shift(self._prev_thumb, thumb))
        out = self.backend(np.stack([x, x if prev is None else prev])[None])[0, 0]
        self._prev, self._prev_luma, self._prev_thumb = out, luma, thumb
        return out


def infer(run: Run, restorer: Restorer, i420: I420Path | None = None, inflight: int = 1) -> None:
    """Restore batches from the decoder's queue into the encoder's, in order. With
    `inflight` > 1, that many batches are restored at once, each in its own thread (the
    backend was opened for as many streams), and handed on in the order they were read."""

    def restore(items: list) -> tuple[list[np.ndarray], float]:
        t = time.perf_counter()
        frames = [it[1] for it in items]
        if i420 is not None:
            outs = i420(restorer, frames)
        else:
            outs = restore_frames(restorer, frames, color_order="bgr")
        return outs, (time.perf_counter() - t) / len(items)

    def hand_on(items: list, outs: list[np.ndarray], dt: float) -> bool:
        run.lat["infer"] += [dt] * len(items)
        for (idx, frame, t_dec), out in zip(items, outs, strict=True):
            run.restored += 1
            if not run.put(run.q_out, (idx, frame if run.want_input else None, out, t_dec)):
                return False
        return True

    pool = ThreadPoolExecutor(inflight, "jsnet-infer") if inflight > 1 else None
    pending: deque = deque()  # (items, future), oldest first

    def drain(keep: int) -> bool:
        while len(pending) > keep:
            items, future = pending.popleft()
            if not hand_on(items, *future.result()):  # a backend error is raised here
                return False
        return True

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
            if pool is None or not run.restored and not pending:
                # The first batch runs alone: runtimes set themselves up on their first call,
                # and two first calls at once deadlocked in OpenVINO 2026.4 (pybind11's
                # one-time numpy setup, taken by one thread while the other held the GIL).
                if not hand_on(items, *restore(items)):
                    return
            else:
                pending.append((items, pool.submit(restore, items)))
                if not drain(inflight - 1):
                    return
        drain(0)
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        run.put(run.q_out, _END)


def encode(
    run: Run, writer, pv_writer, size: tuple[int, int], rotation: int, label: str, window: bool
) -> None:
    w, h = size
    last, prev = -1, None
    while True:
        item = run.get(run.q_out)
        if item is None or item is _END:
            return
        idx, frame, out, t_dec = item
        if out.ndim == 3 and out.shape[:2] != (h, w):  # (I420 frames are made to size)
            oh, ow = out.shape[:2]
            if 0 <= oh - h <= 1 and 0 <= ow - w <= 1:  # odd size: crop to even
                out = np.ascontiguousarray(out[:h, :w])
            else:  # the stream changed size mid-way: the file cannot
                out = cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA)
        t = time.perf_counter()
        for k in range(last + 1, idx):  # frames dropped by --realtime: repeat, keep timing
            writer.write(prev if prev is not None else out, run.pts[k])
            run.written += 1
        writer.write(out, run.pts[idx])
        run.written += 1
        if run.first_out is None:
            run.first_out = time.perf_counter()
        if pv_writer is not None or window:
            side = side_by_side(frame, out, rotation, label)
            if pv_writer is not None:
                pv_writer.write(side, run.pts[idx])
            if window:
                run.latest_preview = side
        run.lat["encode"].append(time.perf_counter() - t)
        run.lat["end_to_end"].append(time.perf_counter() - t_dec)
        last, prev = idx, out


def wait(
    run: Run,
    bar,
    live: bool,
    say: Callable[[str], None],
    window: bool,
) -> bool:
    """Wait for the stages, updating the bar; True if interrupted (Ctrl-C).

    For a live source the first Ctrl-C ends the capture and finishes the output normally
    (a camera or stream has no other end); a second one aborts. A read that still blocks
    `STALL_S` after the capture was stopped (a stalled stream) is left behind: the frames
    read so far are finished without it.
    """
    while True:
        try:
            while not run.finished("infer", "encode"):
                run.done["encode"].wait(_POLL)
                if bar is not None and run.written > bar.n:
                    bar.update(run.written - bar.n)
                if window and run.latest_preview is not None:
                    cv2.imshow("jsnet-edge preview", run.latest_preview)
                    cv2.waitKey(1)
                if run.errors:
                    run.stop.set()
                if not run.cut and _read_stalled(run):
                    run.cut = True  # the decoder is stuck in its read: end without it
                    say(f"the stream sent nothing for {STALL_S:g} s; finishing without it")
                    run.put(run.q_in, _END)
            return False
        except KeyboardInterrupt:
            if live and not run.capture_stop.is_set():
                run.capture_stop.set()
                run.capture_stop_at = time.monotonic()
                say("stopping the capture and finishing the output (Ctrl-C again to abort)")
                continue
            run.stop.set()
            return True


def _read_stalled(run: Run) -> bool:
    since, stopped = run.reading_since, run.capture_stop_at
    if since is None or stopped is None or run.done["decode"].is_set():
        return False
    return time.monotonic() - max(since, stopped) > STALL_S
