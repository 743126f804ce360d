"""Checks of an exported graph against the torch reference, with stated tolerances."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from jsnet_edge.degradations import Degradation, degrade
from jsnet_edge.errors import ModelError
from jsnet_edge.export.graph import INPUT, onnx_input_dtype
from jsnet_edge.images import center_crop, load_image, prepare_clean, sample_images
from jsnet_edge.metrics import score
from jsnet_edge.models.network import JSNet

FP32_TOLERANCE = 1e-3  # max abs difference on the 0..255 scale


def photo_input(net: JSNet, height: int = 96, width: int = 96) -> np.ndarray:
    """A crop of a shipped photograph as a network input (NCHW float32, 0..255)."""
    img = prepare_clean(load_image(sample_images()[0]), net.colors)
    reps = (-(-height // img.shape[0]), -(-width // img.shape[1])) + (1,) * (img.ndim - 2)
    img = np.tile(img, reps)[:height, :width]
    img = img[:, :, None] if img.ndim == 2 else img
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32)


def verify_onnx(net: JSNet, path: str | Path) -> float:
    """Max abs difference between onnxruntime on `path` and torch fp32, on a photograph.

    Raises for an fp32 file that is off by more than 1e-3 (0..255): an export bug, never a
    rounding question. fp16 files are only reported.
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    h, w = (d.dim_value if d.dim_value > 0 else 96 for d in dims[2:])
    x = photo_input(net, h, w)
    if dims[0].dim_value > 1:
        x = np.repeat(x, dims[0].dim_value, axis=0)
    with torch.inference_mode():
        ref = net.float().eval()(torch.from_numpy(x)).numpy()
    dtype = onnx_input_dtype(path)
    diff = float(np.abs(run_reference(path, x.astype(dtype)) - ref).max())
    if dtype == np.float32 and diff > FP32_TOLERANCE:
        raise ModelError(
            f"the exported graph differs from torch by {diff:.3g} (> "
            f"{FP32_TOLERANCE}); please report this export bug"
        )
    return diff


def run_reference(path: str | Path, x: np.ndarray) -> np.ndarray:
    """`path` run once by onnxruntime's CPU reference kernels (the check of an export, not
    a deployment backend: those live in `jsnet_edge.runtime`)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {INPUT: x})[0], dtype=np.float32)


# PSNR a lower-precision file may lose against torch fp32 on a photograph, as the check
# before an engine is built (TensorRT's own samples check each stage the same way).
TOLERANCE_DB = {"fp16": 0.1, "int8": 1.0}


@dataclass(frozen=True)
class StageCheck:
    """One file checked against the torch fp32 reference on a degraded photograph."""

    precision: str
    reference_db: float
    file_db: float

    @property
    def loss_db(self) -> float:
        return self.reference_db - self.file_db

    @property
    def tolerance_db(self) -> float:
        return TOLERANCE_DB.get(self.precision, 0.0)

    def describe(self) -> str:
        return (
            f"{self.precision} ONNX vs torch fp32 on a photograph: {self.file_db:.2f} vs "
            f"{self.reference_db:.2f} dB, loss {self.loss_db:.3f} dB "
            f"(tolerance {self.tolerance_db:g} dB)"
        )


def check_stage(net: JSNet, path: str | Path, precision: str, side: int = 128) -> StageCheck:
    """The PSNR of `path` (run by onnxruntime's CPU kernels) and of torch fp32 on the same
    degraded crop of a shipped photograph; raises when the loss passes the tolerance."""
    clean = prepare_clean(load_image(sample_images()[0]), net.colors)
    clean = center_crop(clean, side * net.scale)
    deg = Degradation(net.task)
    target, degraded = degrade(clean, deg, seed=0)
    x = degraded.astype(np.float32)
    x = x[:, :, None] if x.ndim == 2 else x
    x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
    with torch.inference_mode():
        ref = net.float().eval()(torch.from_numpy(x)).numpy()
    out = run_reference(path, x.astype(onnx_input_dtype(path)))
    result = StageCheck(
        precision,
        score(ref[0].transpose(1, 2, 0), target, scale=net.scale),
        score(out[0].transpose(1, 2, 0), target, scale=net.scale),
    )
    if result.loss_db > result.tolerance_db:
        raise ModelError(
            f"the {result.describe()}: over the tolerance, so no engine was built from it"
        )
    return result
