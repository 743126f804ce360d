"""TensorRT backend: runs an engine built by `jsnet-edge build-engine`.

`execute_async_v3` with tensor addresses; device buffers come from torch CUDA tensors when
torch has CUDA, from cuda-python otherwise. Not run in our CI, which has no GPU (docs/benchmarks.md:
what is verified); the no-GPU refusal is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jsnet_edge.devices import cuda_device_count, gpu_identity
from jsnet_edge.errors import JSNetEdgeError, ModelError, OptionError
from jsnet_edge.export.tensorrt import (
    TensorRT,
    capturing_logger,
    import_tensorrt,
    read_sidecar,
    sha256,
)
from jsnet_edge.outputs import write_bytes
from jsnet_edge.runtime.backend import InputLimits
from jsnet_edge.runtime.cuda_memory import CudaStream, DeviceArray

NO_GPU = (
    "{what} is a TensorRT engine, and no NVIDIA GPU is usable here (no driver or device); "
    "engines run on the GPU they were built for. On this machine run the model on the CPU "
    "(`jsnet-edge bench MODEL` compares the CPU backends)"
)


def rebuild_hint(side: dict, engine: Path) -> str:
    precision = "" if side["precision"] == "fp32" else f" --{side['precision']}"
    return f"rebuild it: jsnet-edge build-engine MODEL{precision} -o {engine.name}"


def check_engine_matches(side: dict, engine: Path, t: TensorRT) -> None:
    """Refuse, with the rebuild command, an engine of another builder, version or GPU, or
    one that does not match its sidecar. (TensorRT for RTX also answers for itself, in
    `TensorRTBackend`: `get_engine_validity`.)"""
    rebuild = rebuild_hint(side, engine)
    built = f"{side['builder']} {side['builder_version']}"
    if (side["builder"], side["builder_version"]) != (t.name, t.version):
        raise ModelError(
            f"{engine} was built with {built}, this is {t.describe()}; engines only load in "
            f"the builder and version that made them; {rebuild}"
        )
    if sha256(engine) != side["engine_sha256"]:
        raise ModelError(f"{engine} does not match its sidecar (corrupt or replaced); {rebuild}")
    if not t.rtx:
        gpu, cc = gpu_identity()
        if cc not in side["compute_capabilities"]:
            raise ModelError(
                f"{engine} was built for {side.get('gpu') or 'another GPU'} (compute "
                f"{'/'.join(side['compute_capabilities'])}), this GPU is {gpu} (compute {cc}); "
                f"{rebuild}"
            )


def runtime_cache_path(engine: Path) -> Path:
    """Where TensorRT for RTX keeps the kernels it compiled for this GPU, beside the engine,
    so that the next load does not compile them again."""
    return engine.with_name(engine.name + ".runtime-cache")


class TensorRTBackend:
    """Runs a TensorRT engine: a file from `jsnet-edge build-engine` (checked against its
    sidecar first), or, through `from_plan`, a serialised engine held in memory (the
    latency profiler's blocks). Classic TensorRT and TensorRT for RTX engines load through
    the same code; RTX engines keep a runtime cache file beside the engine.

    Where no GPU is usable it refuses in one line before touching CUDA: the runtimes fail
    (or crash the process) when asked to deserialise an engine without one.
    """

    name = "tensorrt"

    def __init__(self, engine_path: str | Path, device: str = "cuda") -> None:
        engine_path = Path(engine_path)
        side = read_sidecar(engine_path)
        if not device.startswith("cuda"):
            raise OptionError("TensorRT engines run on --device cuda")
        t = import_tensorrt()
        if cuda_device_count() == 0:
            raise OptionError(NO_GPU.format(what=engine_path))
        check_engine_matches(side, engine_path, t)
        self._load(
            t,
            engine_path.read_bytes(),
            device,
            side["precision"],
            f"{engine_path} ({rebuild_hint(side, engine_path)})",
            runtime_cache_path(engine_path) if t.rtx else None,
        )

    @classmethod
    def from_plan(cls, plan: bytes, device: str = "cuda", precision: str = "fp32"):
        if cuda_device_count() == 0:
            raise OptionError(NO_GPU.format(what="the network being timed"))
        self = cls.__new__(cls)
        self._load(import_tensorrt(), plan, device, precision, "an engine built in memory", None)
        return self

    def _load(
        self,
        t: TensorRT,
        plan: bytes,
        device: str,
        precision: str,
        what: str,
        cache_path: Path | None,
    ) -> None:
        trt = t.module
        self.trt = trt
        self.logger = capturing_logger(trt)  # must outlive the engine
        self.runtime = trt.Runtime(self.logger)
        if hasattr(self.runtime, "get_engine_validity"):  # TensorRT for RTX answers itself
            validity, diagnostics = self.runtime.get_engine_validity(plan)
            if validity == trt.EngineValidity.INVALID:
                reasons = [
                    name.lower().replace("_", " ")
                    for name, flag in trt.EngineInvalidityDiagnostics.__members__.items()
                    if int(diagnostics) & int(flag)
                ]
                raise ModelError(
                    f"{t.describe()} says {what} cannot run on this GPU"
                    f" ({', '.join(reasons) or 'no reason given'})"
                )
        self.engine = self.runtime.deserialize_cuda_engine(plan)
        if self.engine is None:
            raise ModelError(
                f"TensorRT could not load {what}: " + "; ".join(self.logger.messages[-2:])[:300]
            )
        self.cache_path, self.cache, self._shapes = cache_path, None, set()
        if t.rtx:
            config = self.engine.create_runtime_config()
            self.cache = config.create_runtime_cache()  # referenced for the context's life
            if cache_path is not None and cache_path.is_file():
                self.cache.deserialize(cache_path.read_bytes())  # False: stale; starts empty
            config.set_runtime_cache(self.cache)
            self.runtime_config = config
            self.context = self.engine.create_execution_context(config)
        else:
            self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.input, self.output = inputs[0], outputs[0]
        self.in_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.input)))
        self.out_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.output)))
        lo, _, hi = self.engine.get_tensor_profile_shape(self.input, 0)
        self.min_shape, self.max_shape = tuple(lo), tuple(hi)
        self.precision = precision
        self.device = device
        # The Restorer keeps its tiles and batches inside the profile.
        self.limits = InputLimits(batch=int(hi[0]), width=int(hi[3]), height=int(hi[2]))
        try:
            import torch

            self.torch = torch if torch.cuda.is_available() else None
        except ImportError:
            self.torch = None

    def _save_cache(self, shape: tuple[int, ...]) -> None:
        """After the first run of a new input shape (RTX compiles its kernels lazily, per
        shape), keep them for the next load. A cache that cannot be written only costs
        time, so it never fails a run."""
        if self.cache is None or self.cache_path is None or shape in self._shapes:
            return
        self._shapes.add(shape)
        try:
            write_bytes(self.cache_path, bytes(self.cache.serialize()))
        except JSNetEdgeError:
            pass

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        for i, (lo, v, hi) in enumerate(zip(self.min_shape, shape, self.max_shape, strict=True)):
            if i != 1 and not lo <= v <= hi:
                raise OptionError(
                    f"input of shape {tuple(shape)} is outside the engine's profile (min "
                    f"{self.min_shape}, max {self.max_shape}); use smaller tiles (--tile) or "
                    "rebuild with larger --max-shape"
                )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        n, c, h, w = x.shape
        lo_h, lo_w = self.min_shape[2], self.min_shape[3]
        ph, pw = max(0, lo_h - h), max(0, lo_w - w)
        if ph or pw:  # below the profile's minimum: pad, run, crop
            x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="edge")
        self._check_shape(x.shape)
        ctx = self.context
        ctx.set_input_shape(self.input, tuple(x.shape))
        out_shape = tuple(ctx.get_tensor_shape(self.output))
        if self.torch is not None:
            y = self._run_torch(x, out_shape)
        else:
            y = self._run_cuda_python(x, out_shape)
        self._save_cache(tuple(x.shape))
        s = out_shape[2] // x.shape[2]
        return y[:, :, : h * s, : w * s].astype(np.float32, copy=False)

    def _run_torch(self, x: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
        torch = self.torch
        xin = torch.from_numpy(np.ascontiguousarray(x, dtype=self.in_dtype)).cuda()
        out = torch.empty(
            out_shape, dtype=torch.from_numpy(np.zeros(0, self.out_dtype)).dtype, device="cuda"
        )
        self.context.set_tensor_address(self.input, xin.data_ptr())
        self.context.set_tensor_address(self.output, out.data_ptr())
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise ModelError("TensorRT execution failed: " + "; ".join(self.logger.messages[-2:]))
        stream.synchronize()
        return out.cpu().numpy()

    def _run_cuda_python(self, x: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray:
        host_in = np.ascontiguousarray(x, dtype=self.in_dtype)
        host_out = np.empty(out_shape, dtype=self.out_dtype)
        stream = CudaStream()
        d_in, d_out = DeviceArray(host_in.nbytes), DeviceArray(host_out.nbytes)
        try:
            d_in.upload(host_in, stream)
            self.context.set_tensor_address(self.input, int(d_in.ptr))
            self.context.set_tensor_address(self.output, int(d_out.ptr))
            if not self.context.execute_async_v3(stream.handle):
                raise ModelError(
                    "TensorRT execution failed: " + "; ".join(self.logger.messages[-2:])
                )
            d_out.download(host_out, stream)
            stream.synchronize()
        finally:
            d_in.free()
            d_out.free()
            stream.close()
        return host_out
