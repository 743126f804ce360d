"""Timing a block or a whole network on the device and backend it will be deployed on.

Latency is not FLOPs on these machines (docs: cpu-measurements.md), so the search works from
measured times. Every number comes from the same recipe: build the module, run it the way
its backend runs it (eager torch, an ONNX file in an onnxruntime session, the same ONNX
compiled by OpenVINO with an explicit inference precision, a TensorRT engine), warm up,
repeat, reject outliers beyond a few scaled MADs, take the median.

Blocks are exported with the same dynamic axes that `jsnet_edge.deploy.export` gives whole
networks, and whole networks are measured through the deploy backends themselves, so a
measured latency is what `Restorer` users get for one untiled call.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from jsnet_edge.errors import MissingDependencyError, OptionError

BACKENDS = ("torch", "onnxruntime", "openvino", "tensorrt")
DEVICES = ("cpu", "cuda")
# What each backend can be profiled in. int8 latency depends on which layers calibration
# keeps in float (see jsnet_edge.calibration), so no per-block table can predict it.
SUPPORTED = {
    "torch": {"cpu": ("fp32", "bf16"), "cuda": ("fp32", "bf16", "fp16")},
    "onnxruntime": {"cpu": ("fp32", "fp16"), "cuda": ("fp32", "fp16")},
    "openvino": {"cpu": ("fp32", "bf16")},
    "tensorrt": {"cuda": ("fp32", "fp16")},
}
INT8_MESSAGE = (
    "int8 cannot be profiled per block: which layers an int8 network keeps in float is "
    "decided by `jsnet-edge calibrate` for the whole network, so block latencies would not add "
    "up to it. Search in fp32 (or bf16/fp16), then calibrate the result and check it with "
    "`jsnet-edge bench`"
)


def check_target(device: str, backend: str, precision: str) -> None:
    """Refuse, with the reason, a device/backend/precision that cannot be profiled."""
    if backend not in BACKENDS:
        raise OptionError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if device not in DEVICES:
        raise OptionError(f"unknown device {device!r}; choose cpu or cuda")
    if precision == "int8":
        raise OptionError(INT8_MESSAGE)
    if precision not in ("fp32", "fp16", "bf16"):
        raise OptionError(f"unknown precision {precision!r}; choose fp32, fp16 or bf16")
    devices = SUPPORTED[backend]
    if device not in devices:
        raise OptionError(f"the {backend} backend runs on {' or '.join(devices)}, not {device}")
    if precision not in devices[device]:
        raise OptionError(
            f"{backend} on {device} is profiled in {', '.join(devices[device])}, not {precision}"
        )


@dataclass(frozen=True)
class TimingMethod:
    """How one latency is measured.

    Args:
        warmup: untimed runs first (allocations, kernel selection, caches).
        repeats: timed runs, at most.
        min_repeats: timed runs, at least (slow blocks stop after `max_seconds`).
        min_seconds: keep timing fast blocks at least this long, so that their median spans
            more than one burst of another process's work on a shared core.
        max_seconds: time budget of the timed runs of one block.
        reject_mad: samples further than this many scaled MADs (1.4826 x median absolute
            deviation, the normal-consistent scale) from the median are rejected.
    """

    warmup: int = 3
    repeats: int = 15
    min_repeats: int = 5
    min_seconds: float = 0.2
    max_seconds: float = 1.5
    reject_mad: float = 3.0

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.repeats < 1 or not 1 <= self.min_repeats <= self.repeats:
            raise OptionError("timing needs warmup >= 0 and 1 <= min_repeats <= repeats")
        if (
            not 0 <= self.min_seconds <= self.max_seconds
            or self.max_seconds <= 0
            or self.reject_mad <= 0
        ):
            raise OptionError(
                "timing needs 0 <= min_seconds <= max_seconds, max_seconds > 0 and reject_mad > 0"
            )

    def describe(self) -> dict:
        d = asdict(self)
        d["statistic"] = (
            f"median of the timed runs after rejecting samples beyond "
            f"{self.reject_mad:g} x 1.4826 x MAD of the median; one input, batch 1, "
            "wall clock (perf_counter) around one backend call, CUDA synchronised"
        )
        return d


@dataclass(frozen=True)
class Timing:
    ms: float
    mad_ms: float
    kept: int
    runs: int


def robust_median(samples_ms: list[float], reject_mad: float = 3.0) -> Timing:
    """Median after rejecting outliers (another process waking up on a shared core)."""
    med = statistics.median(samples_ms)
    mad = statistics.median(abs(s - med) for s in samples_ms) * 1.4826
    kept = [s for s in samples_ms if mad == 0 or abs(s - med) <= reject_mad * mad]
    return Timing(statistics.median(kept), mad, len(kept), len(samples_ms))


def time_call(
    run: Callable[[], object], method: TimingMethod, sync: Callable[[], None] = lambda: None
) -> Timing:
    """Warm up, then time `run`: at least `min_repeats` runs; stop after `repeats` runs once
    `min_seconds` have passed, or after `max_seconds` in any case."""
    for _ in range(method.warmup):
        run()
    sync()
    samples: list[float] = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        run()
        sync()
        samples.append((time.perf_counter() - t0) * 1e3)
        elapsed = time.perf_counter() - start
        if len(samples) >= method.min_repeats and (
            elapsed > method.max_seconds
            or (len(samples) >= method.repeats and elapsed >= method.min_seconds)
        ):
            break
    return robust_median(samples, method.reject_mad)


# --- the machine ---------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def gpu_description() -> dict:
    if not torch.cuda.is_available():
        raise OptionError("--device cuda was asked for, but torch sees no CUDA GPU")
    driver = "unknown"
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
        for word in text.split():
            if word.count(".") >= 1 and word.replace(".", "").isdigit():
                driver = word
                break
    except OSError:
        pass
    major, minor = torch.cuda.get_device_capability(0)
    return {
        "gpu": torch.cuda.get_device_name(0),
        "driver": driver,
        "compute_capability": f"{major}.{minor}",
        "cuda": torch.version.cuda,
    }


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
    from jsnet_edge.deploy.tensorrt_engine import import_tensorrt

    return import_tensorrt().__version__


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
    from jsnet_edge import __version__

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
    return fp


# --- runners: one call of a block or a network -------------------------------------------


def export_module_onnx(
    module: nn.Module, shape: tuple[int, ...], path: Path, precision: str = "fp32"
) -> Path:
    """Any NCHW -> NCHW module as ONNX, named and shaped as `jsnet_edge.deploy.export` names
    and shapes whole networks (input/output, dynamic batch/height/width, opset 17), so a
    block runs in its profiling session as it runs inside the deployed graph."""
    import onnx

    from jsnet_edge.deploy.export import INPUT, OPSET, OUTPUT, to_fp16

    module = module.float().cpu().eval()
    dummy = torch.rand(*shape)
    dynamic = {
        INPUT: {0: "batch", 2: "height", 3: "width"},
        OUTPUT: {0: "batch", 2: "out_height", 3: "out_width"},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (dummy,),
            str(path),
            input_names=[INPUT],
            output_names=[OUTPUT],
            opset_version=OPSET,
            dynamo=False,
            dynamic_axes=dynamic,
            do_constant_folding=True,
        )
    if precision == "fp16":
        onnx.save(to_fp16(onnx.load(str(path))), str(path))
    return path


class _TensorRTRunner:
    """A static-shape engine for one block, run on torch CUDA buffers (profiling only; whole
    networks go through `build_engine` and `TensorRTBackend`, as users run them)."""

    def __init__(self, onnx_path: Path, shape: tuple[int, ...]) -> None:
        from jsnet_edge.deploy.tensorrt_engine import capturing_logger, import_tensorrt
        from jsnet_edge.errors import ModelError

        trt = import_tensorrt()
        self.logger = capturing_logger(trt)
        builder = trt.Builder(self.logger)
        flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        network = builder.create_network(0 if flag is None else 1 << int(flag))
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = (str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ModelError("TensorRT cannot parse a profiling block: " + "; ".join(errors))
        config = builder.create_builder_config()
        profile = builder.create_optimization_profile()
        profile.set_shape(network.get_input(0).name, shape, shape, shape)
        config.add_optimization_profile(profile)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise ModelError(
                "TensorRT failed to build a profiling block: "
                + "; ".join(self.logger.messages[-2:])
            )
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(plan)
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inp = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT][0]
        out = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT][0]
        self.context.set_input_shape(inp, shape)
        dtype = {np.dtype(np.float16): torch.float16}.get(
            np.dtype(trt.nptype(self.engine.get_tensor_dtype(inp))), torch.float32
        )
        self.x = torch.rand(*shape, device="cuda").to(dtype)
        self.y = torch.empty(tuple(self.context.get_tensor_shape(out)), device="cuda", dtype=dtype)
        self.context.set_tensor_address(inp, self.x.data_ptr())
        self.context.set_tensor_address(out, self.y.data_ptr())
        self.stream = torch.cuda.Stream()

    def __call__(self) -> None:
        self.context.execute_async_v3(self.stream.cuda_stream)
        self.stream.synchronize()


class BlockRunner:
    """One call of a module at a fixed input shape on a backend; `close()` frees its files.

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
        self.sync: Callable[[], None] = torch.cuda.synchronize if device == "cuda" else lambda: None
        self.threads = threads if backend == "torch" else None
        self._tmp: tempfile.TemporaryDirectory | None = None
        x = np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)
        if backend == "torch":
            self._run = _torch_runner(module, x, device, precision)
            return
        self._tmp = tempfile.TemporaryDirectory(prefix="jsnet-edge-profile-")
        path = Path(self._tmp.name) / "block.onnx"
        export_module_onnx(module, shape, path, "fp16" if precision == "fp16" else "fp32")
        if backend == "tensorrt":
            self._run = _TensorRTRunner(path, shape)
        else:
            runtime = _onnx_backend(path, backend, device, precision, threads)
            self._run = lambda: runtime(x)

    def time(self, method: TimingMethod) -> Timing:
        with _torch_threads(self.threads):
            return time_call(self._run, method, self.sync)

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _torch_runner(
    module: nn.Module, x: np.ndarray, device: str, precision: str
) -> Callable[[], object]:
    """Eager torch as `TorchBackend` runs: channels_last, autocast for 16-bit."""
    dev = torch.device(device)
    m = module.float().eval().to(dev, memory_format=torch.channels_last)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]

    @torch.inference_mode()
    def run() -> torch.Tensor:
        t = torch.from_numpy(x).to(dev).contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            y = m(t)
        return y.float().cpu()

    return run


class _torch_threads:
    """Run torch with `n` threads inside the block, restoring the setting after."""

    def __init__(self, n: int | None) -> None:
        self.n, self.old = n, torch.get_num_threads()

    def __enter__(self) -> None:
        if self.n:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc) -> None:
        if self.n:
            torch.set_num_threads(self.old)


def _onnx_backend(path: Path, backend: str, device: str, precision: str, threads: int | None):
    """The deploy backend (onnxruntime or OpenVINO) for an ONNX file, with its thread count."""
    if backend == "onnxruntime":
        from jsnet_edge.deploy.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, precision=precision, device=device, threads=threads)
    from jsnet_edge.deploy.openvino_backend import OpenVinoBackend

    return OpenVinoBackend(path, precision=precision, device=device, threads=threads)


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
    """A whole `JSNet(genotype, task)` measured through the deploy backend users run it on
    (the file `jsnet-edge export` writes, in the backend class `Restorer` uses).

    One call on a 1 x colors x H x W input (H, W from `input_size` = (W, H)), untiled.
    """
    from jsnet_edge.deploy.export import export_onnx
    from jsnet_edge.models.network import JSNet

    check_target(device, backend, precision)
    torch.manual_seed(seed)
    net = JSNet(genotype, task=task, colors=colors).eval()
    w, h = input_size
    x = np.random.default_rng(seed).uniform(0, 255, (1, colors, h, w)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="jsnet-edge-measure-") as tmp:
        if backend == "torch":
            from jsnet_edge.deploy.torch_backend import TorchBackend

            runner = TorchBackend(net, device=device, precision=precision)
        elif backend == "tensorrt":
            from jsnet_edge.deploy.tensorrt_backend import TensorRTBackend
            from jsnet_edge.deploy.tensorrt_engine import Profile, build_engine

            onnx_path = export_onnx(net, Path(tmp) / "net.onnx", precision=precision)
            engine = build_engine(
                onnx_path,
                Path(tmp) / "net.engine",
                profile=Profile(min=(w, h), opt=(w, h), max=(w, h)),
            )
            runner = TensorRTBackend(engine, device=device)
        else:
            file_precision = "fp16" if precision == "fp16" else "fp32"
            onnx_path = export_onnx(net, Path(tmp) / "net.onnx", precision=file_precision)
            runner = _onnx_backend(onnx_path, backend, device, precision, threads)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        with _torch_threads(threads if backend == "torch" else None):
            return time_call(lambda: runner(x), method, sync)
