"""ONNX Runtime backend: CPU everywhere, the CUDA provider where onnxruntime-gpu is installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jsnet_edge.errors import MissingDependencyError, ModelError, OptionError
from jsnet_edge.export.graph import INPUT
from jsnet_edge.runtime.backend import InputLimits


class OnnxRuntimeBackend:
    """Runs an ONNX file exported (and possibly calibrated) by jsnet-edge.

    The precision is the ONNX file's own (fp32, fp16 or int8 Q/DQ): onnxruntime never
    changes it, so what it measures is what the file holds.
    """

    name = "onnxruntime"
    limits: InputLimits | None = None

    def __init__(
        self, onnx_path: str | Path, precision: str, device: str = "cpu", threads: int | None = None
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingDependencyError(
                "onnxruntime is not installed; pip install onnxruntime"
            ) from None
        self.precision = precision
        self.device = device
        available = ort.get_available_providers()
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in available:
                raise OptionError(
                    "onnxruntime has no CUDA provider here (install onnxruntime-gpu) "
                    "; use --device cpu or another backend"
                )
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        elif device == "cpu":
            providers = ["CPUExecutionProvider"]
        else:
            raise OptionError(f"onnxruntime runs on cpu or cuda, not {device!r}")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(onnx_path), opts, providers=providers)
        except Exception as e:  # ORT raises its own exception types for invalid graphs
            raise ModelError(
                f"onnxruntime cannot load {onnx_path}: {str(e).splitlines()[0][:200]}"
            ) from None
        self.input = INPUT
        fp16 = self.session.get_inputs()[0].type == "tensor(float16)"
        self.dtype = np.dtype(np.float16 if fp16 else np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = self.session.run(None, {self.input: np.ascontiguousarray(x, dtype=self.dtype)})[0]
        return y.astype(np.float32, copy=False)
