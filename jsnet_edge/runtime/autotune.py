"""`backend="auto"` on a CPU without bf16: OpenVINO or onnxruntime, whichever runs this
model faster here, measured once and remembered.

Neither runtime wins everywhere: on the project's 2-core EPYC, onnxruntime fp32 runs the
real-time SR network 20% faster than OpenVINO fp32, while OpenVINO wins on the paper-size
networks. So the choice is measured: a 640x360 frame (the size video runs at, or the
tile) through each candidate, a few times after a warm-up, and kept in the user cache
under the model's content, the CPU and the runtimes' versions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jsnet_edge.cache import healed, optional_cache_dir
from jsnet_edge.devices import cpu_model
from jsnet_edge.outputs import write_json
from jsnet_edge.runtime.backend import Backend
from jsnet_edge.runtime.export_cache import file_key
from jsnet_edge.runtime.timing import TimingMethod, time_call

SHAPE_HW = (360, 640)


def _versions() -> str:
    import onnxruntime
    import openvino

    return f"onnxruntime {onnxruntime.__version__}, openvino {openvino.__version__}"


def fastest(key: str | None, candidates: dict, colors: int) -> str:
    """The name of the fastest of `candidates` (name -> opener of a Backend), measured on
    one frame, or read from the cache under `key` (None: measured, not kept)."""
    folder = optional_cache_dir("auto") if key else None
    record = None
    if folder is not None:
        record = folder / f"{key}.json"
        cached, problem = None, None
        try:
            cached = json.loads(record.read_text())
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as e:
            problem = f"{type(e).__name__}: {str(e)[:80]}"
        if cached is not None and not (
            isinstance(cached, dict) and isinstance(cached.get("choice"), str)
        ):
            problem = "not a recorded choice"
        if problem:
            healed("backend choice", record, problem)
        elif cached is not None:
            if cached.get("cpu") == cpu_model() and cached.get("versions") == _versions():
                if cached["choice"] in candidates:
                    return cached["choice"]
    h, w = SHAPE_HW
    x = np.random.default_rng(0).uniform(0, 255, (1, colors, h, w)).astype(np.float32)
    times = {name: _time(open_(), x) for name, open_ in candidates.items()}
    choice = min(times, key=times.get)
    if record is not None:
        try:
            write_json(
                record,
                {
                    "choice": choice,
                    "ms": times,
                    "cpu": cpu_model(),
                    "versions": _versions(),
                    "input": [h, w],
                },
            )
        except Exception:  # noqa: BLE001 - a cache only saves time
            pass
    return choice


# One warm-up (first-call allocations, compilation for this shape), then three calls: a
# choice made once per model and machine, at the start of a user's first run.
AUTO_TIMING = TimingMethod(warmup=1, repeats=3, min_repeats=3, min_seconds=0.0, max_seconds=30.0)


def _time(backend: Backend, x: np.ndarray) -> float:
    return time_call(lambda: backend(x), AUTO_TIMING).ms


def model_key(onnx_path: Path) -> str:
    return file_key(onnx_path)
