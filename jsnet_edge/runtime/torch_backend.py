"""PyTorch eager (optionally `torch.compile`d) backend."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from jsnet_edge.devices import check_torch_device
from jsnet_edge.runtime.backend import InputLimits
from jsnet_edge.runtime.capabilities import check_capability


class TorchBackend:
    """Runs a JSNet (or any NCHW -> NCHW module, such as a block being timed) with torch.

    fp32 everywhere; bf16 through autocast (CPU with AVX-512 BF16/AMX, or CUDA); fp16 on CUDA
    only, where it is fast (CPU fp16 convolutions are slow, and we never downgrade silently).
    """

    name = "torch"
    limits: InputLimits | None = None

    def __init__(
        self,
        model: nn.Module,
        device: str = "cpu",
        precision: str = "fp32",
        *,
        channels_last: bool = True,
        compile: bool = False,
    ) -> None:
        self.dev = check_torch_device(device)
        self.device = str(self.dev)
        check_capability("torch", self.dev.type, precision)
        self.precision = precision
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        # A copy: moving to a device or to channels-last must not change the caller's module.
        self.model = (
            copy.deepcopy(model).float().eval().to(self.dev, memory_format=self.memory_format)
        )
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
