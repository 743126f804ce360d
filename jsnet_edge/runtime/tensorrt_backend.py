"""TensorRT backend: runs an engine built by `jsnet-edge build-engine`.

`execute_async_v3` with tensor addresses; device buffers come from torch CUDA tensors when
torch has CUDA, from cuda-python otherwise. Not run in our CI (no GPU): see README.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jsnet_edge.devices import gpu_identity
from jsnet_edge.errors import ModelError, OptionError
from jsnet_edge.export.tensorrt import capturing_logger, import_tensorrt, read_sidecar, sha256
from jsnet_edge.runtime.backend import InputLimits
from jsnet_edge.runtime.cuda_memory import CudaStream, DeviceArray


def check_engine_matches(side: dict, engine: Path) -> None:
    """Refuse, with the rebuild command, an engine made for another GPU or TensorRT."""
    trt = import_tensorrt()
    gpu, cc = gpu_identity()
    rebuild = (
        f"rebuild it here: jsnet-edge build-engine MODEL --{side['precision']} -o {engine.name}"
        if side["precision"] != "fp32"
        else f"rebuild it here: jsnet-edge build-engine MODEL -o {engine.name}"
    )
    if side["tensorrt"] != trt.__version__:
        raise ModelError(
            f"{engine} was built with TensorRT {side['tensorrt']}, this is "
            f"{trt.__version__}; engines only load in the version that built them; "
            f"{rebuild}"
        )
    if side["compute_capability"] != cc or side["gpu"] != gpu:
        raise ModelError(
            f"{engine} was built for {side['gpu']} (compute "
            f"{side['compute_capability']}), this GPU is {gpu} (compute {cc}); "
            f"{rebuild}"
        )
    if sha256(engine) != side["engine_sha256"]:
        raise ModelError(f"{engine} does not match its sidecar (corrupt or replaced); {rebuild}")


class TensorRTBackend:
    """Runs a TensorRT engine: a file from `jsnet-edge build-engine` (checked against its
    sidecar first), or, through `from_plan`, a serialised engine held in memory (the
    latency profiler's blocks)."""

    name = "tensorrt"

    def __init__(self, engine_path: str | Path, device: str = "cuda") -> None:
        engine_path = Path(engine_path)
        side = read_sidecar(engine_path)
        if not device.startswith("cuda"):
            raise OptionError("TensorRT engines run on --device cuda")
        check_engine_matches(side, engine_path)
        self._load(
            engine_path.read_bytes(),
            device,
            side["precision"],
            f"{engine_path} (rebuild it with jsnet-edge build-engine)",
        )

    @classmethod
    def from_plan(cls, plan: bytes, device: str = "cuda", precision: str = "fp32"):
        self = cls.__new__(cls)
        self._load(plan, device, precision, "an engine built in memory")
        return self

    def _load(self, plan: bytes, device: str, precision: str, what: str) -> None:
        trt = import_tensorrt()
        self.trt = trt
        self.logger = capturing_logger(trt)  # must outlive the engine
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(plan)
        if self.engine is None:
            raise ModelError(
                f"TensorRT could not load {what}: " + "; ".join(self.logger.messages[-2:])[:300]
            )
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
