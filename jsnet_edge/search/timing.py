"""Timing a block or a whole network on the device and backend it will be deployed on.

Latency is not FLOPs on these machines (docs: cpu-measurements.md), so the search works from
measured times. Every number comes from the same recipe: build the module, run it the way
its backend runs it (eager torch, an ONNX file in an onnxruntime session, the same ONNX
compiled by OpenVINO with an explicit inference precision, a TensorRT engine), warm up,
repeat, reject outliers beyond a few scaled MADs, take the median.

Blocks are exported by the exporter whole networks use (`jsnet_edge.export`), and both are
run by the runtimes of `jsnet_edge.runtime`, so a measured latency is what `Restorer` users
get for one untiled call. Nothing here exports, builds or dispatches on its own.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from jsnet_edge._version import __version__
from jsnet_edge.devices import cpu_model, gpu_description, torch_threads, usable_cores
from jsnet_edge.errors import MissingDependencyError, OptionError
from jsnet_edge.export.onnx import export_module, export_onnx, fold_mean_shift, save_onnx
from jsnet_edge.export.tensorrt import build_plan, import_tensorrt
from jsnet_edge.models.network import JSNet
from jsnet_edge.runtime.capabilities import check_capability, device_type, onnx_file_precision
from jsnet_edge.runtime.factory import open_backend, open_onnx
from jsnet_edge.runtime.source import ModelInfo, ModelSource
from jsnet_edge.runtime.tensorrt_backend import TensorRTBackend
from jsnet_edge.runtime.timing import Timing, TimingMethod, time_call
from jsnet_edge.runtime.torch_backend import TorchBackend

# int8 is timed with the Q/DQ placement `calibrate --qat` writes by default (its --scope).
INT8_SCOPE = "convs"


def check_target(device: str, backend: str, precision: str) -> None:
    """Refuse, with the reason, a device/backend/precision that cannot be profiled: what
    the runtime cannot run (the capability table). int8 is timed on the Q/DQ graph that
    quantisation-aware fine-tuning would give the block or network (`int8_graph`)."""
    if precision not in ("fp32", "fp16", "bf16", "int8"):
        raise OptionError(f"unknown precision {precision!r}; choose fp32, fp16, bf16 or int8")
    check_capability(backend, device, precision)


# --- the machine ---------------------------------------------------------------------------


def backend_version(backend: str) -> str:
    if backend == "torch":
        return torch.__version__
    if backend == "onnxruntime":
        import onnxruntime

        return onnxruntime.__version__
    if backend == "openvino":
        try:
            import openvino
        except ImportError:
            raise MissingDependencyError(
                "the openvino backend needs the openvino extra: pip install 'jsnet-edge[openvino]'"
            ) from None
        return openvino.__version__
    return import_tensorrt().describe()


def fingerprint(
    device: str,
    backend: str,
    precision: str,
    input_size: tuple[int, int],
    task: str,
    colors: int,
    threads: int | None = None,
    unshuffle: int = 1,
) -> dict:
    """What a latency table is valid for: the same hardware, runtime (and its thread count),
    precision and shapes."""
    check_target(device, backend, precision)
    version = backend_version(backend)  # first: a missing runtime says so
    fp: dict = {"device": device}
    if device == "cpu":
        fp["cpu"] = cpu_model()
        fp["cores"] = usable_cores()
        fp["threads"] = threads or (torch.get_num_threads() if backend == "torch" else "default")
    else:
        fp.update(gpu_description())
    fp.update(
        backend=backend,
        backend_version=version,
        precision=precision,
        input_size=[int(input_size[0]), int(input_size[1])],
        task=task,
        colors=colors,
        table_format=1,
        jsnet_edge=__version__,
    )
    if unshuffle > 1:  # absent for the paper's layout, so older tables still match
        fp["unshuffle"] = unshuffle
    if precision == "int8":  # where the Q/DQ pairs sit (tables timed before it: "all")
        fp["int8_scope"] = INT8_SCOPE
    return fp


# --- runners: one call of a block or a network -------------------------------------------


class BlockRunner:
    """One call of a module at a fixed input shape on a backend, as the deployed graph runs
    it: eager torch through `TorchBackend`; for the others the block exported by
    `export_module` (the exporter whole networks use) and opened by the runtime factory
    (onnxruntime, OpenVINO) or built by the one TensorRT builder. `close()` frees its files.

    Args:
        module: NCHW -> NCHW, fp32 weights.
        shape: the input shape (1, C, H, W).
    """

    def __init__(
        self,
        module: nn.Module,
        shape: tuple[int, ...],
        backend: str,
        device: str,
        precision: str,
        threads: int | None = None,
    ) -> None:
        check_target(device, backend, precision)
        self.sync: Callable[[], None] = _sync(device)
        self.threads = threads if backend == "torch" else None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.x = np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)
        if backend == "torch":
            self.backend = TorchBackend(module, device=device, precision=precision)
            return
        self._tmp = tempfile.TemporaryDirectory(prefix="jsnet-edge-profile-")
        path = Path(self._tmp.name) / "block.onnx"
        if precision == "int8":
            _save_int8(module, shape, backend, path)
        else:
            export_module(module, shape, path, onnx_file_precision(backend, precision))
        if backend == "tensorrt":
            plan, _ = build_plan(path, (shape, shape, shape), compute_capabilities=_this_gpu())
            self.backend = TensorRTBackend.from_plan(plan, device=device, precision=precision)
        else:
            self.backend = open_onnx(path, backend, device, precision, threads)

    def time(self, method: TimingMethod) -> Timing:
        with torch_threads(self.threads):
            return time_call(lambda: self.backend(self.x), method, self.sync)

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _save_int8(module: nn.Module, shape: tuple[int, ...], backend: str, path: Path) -> None:
    from jsnet_edge.calibration.fakequant import int8_graph  # NNCF, only when int8 is asked for

    target = "tensorrt" if backend == "tensorrt" else "cpu"
    proto = int8_graph(module, shape, target, scope=INT8_SCOPE)
    save_onnx(proto, path)


def _this_gpu() -> tuple[str, ...] | None:
    """Timing builds for the GPU it measures on (TensorRT for RTX otherwise builds for a
    set of compute capabilities; classic TensorRT always builds for the GPU here)."""
    return ("current",) if import_tensorrt().rtx else None


def _sync(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device_type(device) == "cuda" else (lambda: None)


def time_block(
    module: nn.Module,
    shape: tuple[int, ...],
    backend: str,
    device: str,
    precision: str,
    method: TimingMethod,
    threads: int | None = None,
) -> Timing:
    runner = BlockRunner(module, shape, backend, device, precision, threads)
    try:
        return runner.time(method)
    finally:
        runner.close()


def time_network(
    genotype,
    task: str,
    colors: int,
    input_size: tuple[int, int],
    backend: str,
    device: str,
    precision: str,
    method: TimingMethod,
    seed: int = 0,
    threads: int | None = None,
) -> Timing:
    """A whole `JSNet(genotype, task)` measured through the backend users run it on (the
    runtime factory, as `Restorer` opens it; TensorRT: an engine built for this one shape).

    One call on a 1 x colors x H x W input (H, W from `input_size` = (W, H)), untiled.
    """
    check_target(device, backend, precision)
    torch.manual_seed(seed)
    net = JSNet(genotype, task=task, colors=colors).eval()
    w, h = input_size
    x = np.random.default_rng(seed).uniform(0, 255, (1, colors, h, w)).astype(np.float32)
    keep: list = []
    try:
        if precision == "int8":  # the whole network as QAT would give it
            tmp = tempfile.TemporaryDirectory(prefix="jsnet-edge-measure-")
            keep.append(tmp)
            path = Path(tmp.name) / "net.onnx"
            _save_int8(fold_mean_shift(net), (1, colors, h, w), backend, path)
            if backend == "tensorrt":
                shape = (1, colors, h, w)
                plan, _ = build_plan(path, (shape,) * 3, compute_capabilities=_this_gpu())
                runner = TensorRTBackend.from_plan(plan, device=device, precision=precision)
            else:
                runner = open_onnx(path, backend, device, precision, threads)
        elif backend == "tensorrt":
            tmp = tempfile.TemporaryDirectory(prefix="jsnet-edge-measure-")
            keep.append(tmp)
            path = export_onnx(
                net, Path(tmp.name) / "net.onnx", precision=onnx_file_precision(backend, precision)
            )
            shape = (1, colors, h, w)
            plan, _ = build_plan(path, (shape, shape, shape), compute_capabilities=_this_gpu())
            runner = TensorRTBackend.from_plan(plan, device=device, precision=precision)
        else:
            runner = open_backend(
                ModelSource(ModelInfo.of(net), net=net),
                backend,
                device,
                precision,
                keep,
                threads=threads,
            )
        with torch_threads(threads if backend == "torch" else None):
            return time_call(lambda: runner(x), method, _sync(device))
    finally:
        for tmp in keep:
            tmp.cleanup()
