"""The one interface every runtime implements.

A backend runs a restoration network on an NCHW float32 array on the 0..255 scale (RGB or
gray, the network's own convention) and returns the restored NCHW float32 array. Tiling,
colour order, dtypes and alpha are the Restorer's job, so a backend stays small: one file
per runtime (torch, onnxruntime, openvino, tensorrt).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

PRECISIONS = ("fp32", "fp16", "bf16", "int8")


@dataclass(frozen=True)
class InputLimits:
    """The largest input a backend takes in one call (a TensorRT engine's profile has
    one): the Restorer keeps its tiles and batches within it."""

    batch: int
    width: int
    height: int


@runtime_checkable
class Backend(Protocol):
    name: str  # "torch", "onnxruntime", "openvino", "tensorrt"
    precision: str  # one of PRECISIONS
    device: str  # "cpu", "cuda", "cuda:1" ...
    limits: InputLimits | None  # None: any size the memory allows

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """NCHW float32 (0..255) in, NCHW float32 out (scale times larger for SR)."""
        ...
