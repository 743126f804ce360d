"""Checks of an exported graph against the torch reference, with stated tolerances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from jsnet_edge.errors import ModelError
from jsnet_edge.export.onnx import INPUT, onnx_input_dtype
from jsnet_edge.images import load_image, prepare_clean, sample_images
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
