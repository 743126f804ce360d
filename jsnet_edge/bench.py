"""`jsnet-edge bench`: every available backend and precision, side by side, in one run.

Each configuration runs in a fresh process, so that its peak memory is its own and one
runtime's thread pools do not slow the next. Latency is measured on one input of the
given size after warm-up (median and p90); quality is the PSNR loss against torch fp32
on photographs degraded for the task (the package's photographs by default).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import resource
import signal
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from jsnet_edge.calibration.data import builtin_photos, heldout_pairs
from jsnet_edge.degradations import Degradation
from jsnet_edge.devices import cuda_device_count
from jsnet_edge.engine import EngineConfig, EngineReport, build_engine_for
from jsnet_edge.errors import JSNetEdgeError, OptionError
from jsnet_edge.export.graph import read_onnx_metadata
from jsnet_edge.export.tensorrt import Profile, has_tensorrt
from jsnet_edge.metrics import score
from jsnet_edge.outputs import write_json
from jsnet_edge.restorer import Restorer
from jsnet_edge.runtime.capabilities import has_module
from jsnet_edge.runtime.openvino_backend import runs_bf16


@dataclass
class BenchRow:
    backend: str
    precision: str
    device: str
    model: str
    median_ms: float | None = None
    p90_ms: float | None = None
    fps: float | None = None
    peak_mb: float | None = None
    psnr: float | None = None
    psnr_loss: float | None = None
    speedup: float | None = None
    error: str | None = None
    note: str | None = None  # a configuration that was prepared but could not run here


class NothingRanError(JSNetEdgeError):
    """Every configuration of a benchmark failed."""


def check_int8_file(path: str) -> None:
    """Refuse, before minutes of benchmarking, an --int8 file that is not a calibrated ONNX."""
    meta = read_onnx_metadata(path)
    if meta["precision"] != "int8":
        raise OptionError(
            f"{path} holds a {meta['precision']} network; --int8 takes a file from "
            "`jsnet-edge calibrate`"
        )


def default_configs(model: str, int8: str | None, device: str) -> list[tuple[str, str, str]]:
    """(backend, precision, model file) for everything installed here."""
    rows = [("torch", "fp32", model)]
    if device == "cpu":
        rows.append(("torch", "bf16", model))
        rows.append(("onnxruntime", "fp32", model))
        if has_module("openvino"):
            rows.append(("openvino", "fp32", model))
            if runs_bf16():
                rows.append(("openvino", "bf16", model))
        if int8:
            rows.append(("onnxruntime", "int8", int8))
            if has_module("openvino"):
                rows.append(("openvino", "int8", int8))
    else:
        rows.append(("torch", "fp16", model))
    if has_tensorrt():  # built here; run where there is a GPU
        rows += [("tensorrt", "fp32", model), ("tensorrt", "fp16", model)]
    return rows


def _engine_for(model: str, precision: str, size: tuple[int, int], folder: Path) -> EngineReport:
    """An engine of `model` whose profile covers the timed input and the photo crops."""
    w, h = size
    profile = Profile(min=(min(w, 64), min(h, 64)), opt=(w, h), max=(max(w, 96), max(h, 96)))
    cfg = EngineConfig(fp16=precision == "fp16", profile=profile)
    return build_engine_for(model, folder / "model.engine", cfg)


def _photos_pairs(task: str, colors: int, count: int = 4, crop: int = 96):
    """Centre crops of the first bundled photographs, degraded for the task."""
    return heldout_pairs(builtin_photos(colors)[:count], Degradation(task), crop, seed=7)


def _worker(
    conn,
    backend: str,
    precision: str,
    device: str,
    model: str,
    size: tuple[int, int],
    repeats: int,
    warmup: int,
    threads: int | None,
) -> None:
    """Runs in its own process; sends back a dict. Ctrl-C and SIGTERM are the parent's:
    it stops this process (SIGTERM, no traceback) and says one line."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group
    try:
        if threads:  # a process of its own: its setting ends with it
            import torch

            torch.set_num_threads(threads)
        with tempfile.TemporaryDirectory(prefix="jsnet-bench-") as tmp:
            conn.send(_measure(backend, precision, device, model, size, repeats, warmup, Path(tmp)))
    except Exception as e:  # reported in the table, never a crash of the whole run
        try:
            conn.send({"error": f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"})
        except OSError:  # the parent is gone (stopped): nobody to tell
            pass
    finally:
        conn.close()


def _measure(
    backend: str,
    precision: str,
    device: str,
    model: str,
    size: tuple[int, int],
    repeats: int,
    warmup: int,
    tmp: Path,
) -> dict:
    if backend == "tensorrt":
        built = _engine_for(model, precision, size, tmp).engine
        if not device.startswith("cuda") or cuda_device_count() == 0:
            return {"note": f"built ({built.describe()}), not run: no GPU here"}
        model = str(built.path)
    r = Restorer(
        model, backend=backend, device=device, precision=precision, color_order="rgb", tile=4096
    )
    w, h = size
    x = (np.random.default_rng(0).random((1, r.colors, h, w)) * 255).astype(np.float32)
    for _ in range(warmup):
        r.backend(x)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        r.backend(x)
        times.append((time.perf_counter() - t) * 1000)
    values = [
        score(r.restore_array(p.input)[0].transpose(1, 2, 0), p.target, scale=r.scale)
        for p in _photos_pairs(r.task, r.colors)
    ]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.startswith("cuda"):
        import torch

        peak = torch.cuda.max_memory_allocated() / 2**20
    return {
        "times": times,
        "psnr": float(np.mean(values)),
        "peak_mb": peak,
        "precision": r.backend.precision,
        "backend": r.backend.name,
    }


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT ignored while a worker starts: an ignored signal stays ignored across exec,
    so the worker ignores Ctrl-C even while it imports (the parent stops it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def bench(
    model: str,
    configs: list[tuple[str, str, str]],
    size: tuple[int, int],
    *,
    device: str = "cpu",
    repeats: int = 10,
    warmup: int = 2,
    threads: int | None = None,
) -> list[BenchRow]:
    if repeats < 1:
        raise OptionError("--repeats must be at least 1")
    ctx = mp.get_context("spawn")
    rows: list[BenchRow] = []
    for backend, precision, path in configs:
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_worker,
            args=(child, backend, precision, device, path, size, repeats, warmup, threads),
        )
        with _sigint_ignored():  # inherited: the worker ignores Ctrl-C from its first moment
            proc.start()
        child.close()
        try:
            res = parent.recv()
        except EOFError:
            res = {"error": "the benchmark process died (out of memory?)"}
        except BaseException:  # Ctrl-C, SIGTERM: the worker ends with us, quietly
            proc.terminate()
            proc.join()
            raise
        finally:
            parent.close()
        proc.join()
        row = BenchRow(backend, precision, device, Path(path).name)
        if "error" in res:
            row.error = res["error"]
        elif "note" in res:
            row.note = res["note"]
        else:
            t = np.array(res["times"])
            row.median_ms = float(np.median(t))
            row.p90_ms = float(np.percentile(t, 90))
            row.fps = 1000.0 / row.median_ms
            row.peak_mb = float(res["peak_mb"])
            row.psnr = res["psnr"]
        rows.append(row)
    ref = next((r for r in rows if r.backend == "torch" and r.precision == "fp32" and r.psnr), None)
    ort32 = next(
        (r for r in rows if r.backend == "onnxruntime" and r.precision == "fp32" and r.median_ms),
        None,
    )
    for r in rows:
        if ref and r.psnr is not None:
            r.psnr_loss = ref.psnr - r.psnr
        if ort32 and r.median_ms:
            r.speedup = ort32.median_ms / r.median_ms
    return rows


def check_some_ran(rows: list[BenchRow]) -> None:
    """A benchmark in which nothing ran is a failure, not a table of errors."""
    if rows and not any(r.median_ms for r in rows):
        first = next((r.error for r in rows if r.error), "no configuration ran")
        raise NothingRanError(f"no backend could run the model: {first}")


def table(rows: list[BenchRow], size: tuple[int, int]) -> str:
    head = (
        f"input {size[0]}x{size[1]}; speed-up relative to onnxruntime fp32; PSNR loss "
        "relative to torch fp32 on photographs"
    )
    lines = [
        head,
        f"{'backend':<12}{'prec':<6}{'median ms':>10}{'p90 ms':>9}{'fps':>8}"
        f"{'x ort32':>9}{'peak MB':>9}{'PSNR':>8}{'loss dB':>9}",
    ]
    for r in rows:
        if r.error or r.note:
            lines.append(f"{r.backend:<12}{r.precision:<6}  {r.error or r.note}")
            continue
        lines.append(
            f"{r.backend:<12}{r.precision:<6}{r.median_ms:>10.1f}{r.p90_ms:>9.1f}"
            f"{r.fps:>8.2f}{(r.speedup or 0):>9.2f}{r.peak_mb:>9.0f}{r.psnr:>8.2f}"
            f"{(r.psnr_loss or 0):>9.3f}"
        )
    return "\n".join(lines)


def save_json(
    path: Path, rows: list[BenchRow], size: tuple[int, int], machine: str, *, overwrite: bool
) -> Path:
    data = {"input_size": list(size), "machine": machine, "rows": [asdict(r) for r in rows]}
    return write_json(path, data, overwrite=overwrite)
