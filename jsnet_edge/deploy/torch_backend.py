"""PyTorch eager (optionally `torch.compile`d) backend."""

from __future__ import annotations

import copy

import numpy as np
import torch

from jsnet_edge.errors import OptionError
from jsnet_edge.models.network import JSNet


def check_torch_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise OptionError(f"unknown device {device!r}; use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise OptionError("device cuda was asked for, but torch sees no CUDA GPU; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise OptionError(f"device {device!r} is not supported; use cpu or cuda")
    return dev


class TorchBackend:
    """Runs a JSNet with torch.

    fp32 everywhere; bf16 through autocast (CPU with AVX-512 BF16/AMX, or CUDA); fp16 on CUDA
    only, where it is fast (CPU fp16 convolutions are slow, and we never downgrade silently).
    """

    name = "torch"

    def __init__(
        self,
        model: JSNet,
        device: str = "cpu",
        precision: str = "fp32",
        *,
        channels_last: bool = True,
        compile: bool = False,
    ) -> None:
        self.dev = check_torch_device(device)
        self.device = str(self.dev)
        if precision not in ("fp32", "bf16", "fp16"):
            raise OptionError(
                f"the torch backend runs fp32, bf16 or fp16, not {precision!r}; "
                "int8 runs through onnxruntime or openvino"
            )
        if precision == "fp16" and self.dev.type != "cuda":
            raise OptionError(
                "fp16 needs --device cuda with the torch backend; on the CPU "
                "use bf16 (or the openvino backend)"
            )
        self.precision = precision
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        # A copy: moving to a device or to channels-last must not change the caller's module.
        self.model = copy.deepcopy(model).eval().to(self.dev, memory_format=self.memory_format)
        self.dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self.module = torch.compile(self.model, dynamic=True) if compile else self.model

    @torch.inference_mode()
    def __call__(self, x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.dev)
        t = t.contiguous(memory_format=self.memory_format)
        if self.dtype is None:
            y = self.module(t)
        else:
            with torch.autocast(self.dev.type, dtype=self.dtype):
                y = self.module(t)
        return y.float().contiguous().cpu().numpy()
