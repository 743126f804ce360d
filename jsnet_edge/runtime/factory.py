"""From "a model, a backend name, a device and a precision" to a running `Backend`.

Checks that the three fit together (the capability table), says why when they do not,
and picks the backend for `backend="auto"` and the precision for `precision="auto"`.
"""

from __future__ import annotations

import json
from pathlib import Path

from jsnet_edge.errors import ModelError, OptionError
from jsnet_edge.export.graph import read_onnx_metadata
from jsnet_edge.models.frame_layout import FrameLayout, i420_problem
from jsnet_edge.runtime.autotune import fastest, model_key
from jsnet_edge.runtime.backend import PRECISIONS, Backend
from jsnet_edge.runtime.capabilities import (
    BACKENDS,
    check_capability,
    device_type,
    has_module,
    onnx_file_precision,
)
from jsnet_edge.runtime.export_cache import exported
from jsnet_edge.runtime.onnxruntime_backend import OnnxRuntimeBackend
from jsnet_edge.runtime.openvino_backend import OpenVinoBackend, runs_bf16
from jsnet_edge.runtime.source import ModelSource

CHOICES = ("auto", *BACKENDS)


def auto_backend(source: ModelSource, device: str, precision: str | None) -> str:
    """The fastest backend installed for this device and precision.

    CPU: OpenVINO, else onnxruntime. On JSNet x2 at 320x180, fp32: OpenVINO 301 ms vs
    onnxruntime 390 ms on a 2-core Xeon (AMX), 434 vs 444 ms on a 2-core EPYC (Zen 4,
    benchmarks/results); torch eager is slower than both (585 / 573 ms). bf16 and int8 are
    fastest in OpenVINO on both. CUDA: an engine runs on TensorRT; a model on torch; an
    ONNX file on onnxruntime.
    """
    if source.engine is not None:
        return "tensorrt"
    module = source.net is not None or source.model_file is not None
    if device_type(device) == "cuda":
        return "torch" if module else "onnxruntime"
    if source.info.precision == "fp16":
        return "onnxruntime"
    if has_module("openvino"):
        return "openvino"
    if precision == "bf16" and module:
        return "torch"
    return "onnxruntime"


def resolve_precision(source: ModelSource, backend: str, device: str, precision: str | None) -> str:
    """The precision a run uses: `None` is the file's own (fp32 for a model); "auto" is
    the fastest that costs no measurable quality (bf16 on OpenVINO where the CPU has it:
    <= 0.05 dB, tested), else the same as None. (`open_backend` may then take a zoo
    model's shipped INT8 file instead: see `int8_within`.)"""
    own = source.info.precision
    if precision == "auto":
        if backend == "openvino" and own in (None, "fp32") and runs_bf16():
            return "bf16"
        precision = None
    if precision is None:
        return own or "fp32"
    if precision not in PRECISIONS:
        raise OptionError(
            f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)} or auto"
        )
    if own is not None and precision != own:
        # An fp32 ONNX may still run in bf16 inside OpenVINO (a runtime choice).
        if not (backend == "openvino" and own == "fp32" and precision == "bf16"):
            raise OptionError(
                f"this file holds a {own} network, so it runs in {own}, not "
                f"{precision}; export or calibrate another file for {precision}"
            )
    if precision == "int8" and source.info.precision is None:
        raise OptionError(
            "int8 needs a calibrated ONNX file: run `jsnet-edge calibrate MODEL "
            "-o model_int8.onnx` and pass that file as the model"
        )
    return precision


def open_onnx(
    path: Path,
    backend: str,
    device: str,
    precision: str,
    threads: int | None = None,
    streams: int = 1,
) -> Backend:
    """An ONNX file on onnxruntime or OpenVINO (with a thread count, for timing).

    streams: how many calls the backend should run side by side (from as many threads),
        each on its share of the cores, rather than one call on all of them."""
    if backend == "onnxruntime":
        if streams > 1 and threads is None:  # each caller's thread does its own work
            threads = 1
        return OnnxRuntimeBackend(path, precision=precision, device=device, threads=threads)
    if backend == "openvino":
        return OpenVinoBackend(
            path, precision=precision, device=device, threads=threads, streams=streams
        )
    raise OptionError(f"an ONNX file runs on onnxruntime or openvino, not {backend}")


def open_backend(
    source: ModelSource,
    backend: str,
    device: str,
    precision: str | None,
    keep: list,
    *,
    compile: bool = False,
    threads: int | None = None,
) -> Backend:
    """A ready backend. Temporary files it needs are appended to `keep` (kept alive).

    threads: the runtime's thread count (onnxruntime intra-op, OpenVINO inference); None
        leaves the runtime's own choice. torch's is process-wide: see `devices.torch_threads`.
    """
    if backend not in CHOICES:
        raise OptionError(f"unknown backend {backend!r}; choose from {', '.join(CHOICES)}")
    picked = backend == "auto"
    asked = precision
    if picked:
        backend = auto_backend(source, device, precision or source.info.precision)
    if compile and backend != "torch":
        raise OptionError(f"compile (torch.compile) needs the torch backend, not {backend}")
    precision = resolve_precision(source, backend, device, precision)
    check_capability(backend, device, precision)
    if backend == "torch":
        if source.net is None and source.model_file is None:
            raise OptionError(
                "the torch backend runs .safetensors models and zoo names; use "
                "onnxruntime/openvino for .onnx and tensorrt for .engine files"
            )
        from jsnet_edge.runtime.torch_backend import TorchBackend  # torch: only when used

        net = source.load_net()
        return TorchBackend(net, device=device, precision=precision, compile=compile)
    if backend == "tensorrt":
        from jsnet_edge.runtime.tensorrt_backend import TensorRTBackend

        if source.engine is None:
            raise OptionError(
                "the tensorrt backend runs engines: build one with `jsnet-edge "
                "build-engine MODEL -o model.engine` and pass the .engine file"
            )
        return TensorRTBackend(source.engine, device=device)
    if source.engine is not None:
        raise OptionError(f"a TensorRT engine runs on the tensorrt backend, not {backend}")
    if backend == "openvino" and source.info.precision == "fp16":
        raise ModelError(
            "OpenVINO runs the fp32 or int8 ONNX; for 16-bit on the CPU pass the "
            "fp32 file with precision bf16"
        )
    onnx_path = source.onnx
    if onnx_path is None:
        onnx_path = exported(source, onnx_file_precision(backend, precision), keep)
    if picked and backend == "openvino" and precision == "fp32" and has_module("onnxruntime"):
        # No bf16 here: OpenVINO and onnxruntime fp32 each win on some networks.
        backend = fastest(
            model_key(onnx_path),
            {
                "openvino": lambda: open_onnx(onnx_path, "openvino", device, "fp32", threads),
                "onnxruntime": lambda: open_onnx(onnx_path, "onnxruntime", device, "fp32", threads),
            },
            source.info.colors,
        )
    if asked == "auto" and backend == "openvino" and int8_within(source.int8, AUTO_INT8_DROP):
        # The zoo ships an INT8 file whose measured loss is within the bound: it runs
        # when it is measured faster here than the float graph (once per model and machine).
        choice = fastest(
            f"{model_key(onnx_path)}-{precision}-or-int8",
            {
                precision: lambda: open_onnx(onnx_path, "openvino", device, precision, threads),
                "int8": lambda: open_onnx(source.int8, "openvino", device, "int8", threads),
            },
            source.info.colors,
        )
        if choice == "int8":
            return open_onnx(source.int8, "openvino", device, "int8", threads)
    return open_onnx(onnx_path, backend, device, precision, threads)


def open_frames_backend(
    source: ModelSource,
    backend: str,
    device: str,
    precision: str,
    layout: FrameLayout,
    keep: list,
    threads: int | None = None,
    streams: int = 1,
) -> Backend | None:
    """The network on video frames in their own I420 layout (`jsnet_edge.models.frames`),
    on the backend and precision a Restorer already chose; None where that cannot be:
    the network is not a colour x1 model with an even unshuffle that we can export (an
    .onnx, int8 or engine file), or the backend runs no exported graph (torch, TensorRT
    engines)."""
    if backend not in ("openvino", "onnxruntime") or precision not in ("fp32", "bf16"):
        return None
    info = source.info
    if source.net is None and source.model_file is None:
        return None
    # (the sides' multiple is the genotype's unshuffle factor)
    if i420_problem(info.multiple, info.colors, info.scale, info.min_size, layout):
        return None
    path = exported(source, onnx_file_precision(backend, precision), keep, frames=layout)
    return open_onnx(path, backend, device, precision, threads, streams)


# precision="auto" takes a shipped INT8 file only within this loss (dB, the file's report).
AUTO_INT8_DROP = 0.1


def int8_within(path: Path | None, max_drop: float) -> bool:
    """Whether an INT8 file's calibration report holds its loss within `max_drop` dB (the
    conservative figure the file was held to; no report, no promise)."""
    if path is None:
        return False
    try:
        report = json.loads(read_onnx_metadata(path).get("calibration", "null"))
        held = report.get("held", report.get("bound", report.get("drop")))
        return held is not None and float(held) <= max_drop
    except (ValueError, KeyError, TypeError, AttributeError, OSError):
        return False
