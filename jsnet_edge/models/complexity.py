"""Parameter and multiply-add counts, in the conventions of the paper's tables."""

from __future__ import annotations

import torch
from torch import nn

from jsnet_edge.models.network import JSNet


def count_parameters(model: JSNet) -> int:
    """Trainable parameters as the paper counts them.

    The mean-shift layers are excluded, and the CSFM's weight-normalised convolutions count
    their gain (one per output channel) beside the direction, as they do in training and in
    the authors' checkpoints; this is what makes the paper's x2 network 476,443.
    """
    total = sum(p.numel() for name, p in model.named_parameters() if "_mean." not in name)
    for name, module in model.csfm.named_modules():
        if isinstance(module, nn.Conv2d) and name.startswith("ca_"):
            if not hasattr(module, "parametrizations"):
                total += module.out_channels
    return total


def count_stored_weights(model: JSNet) -> int:
    """Numbers in the deployed (weight-norm folded) network, mean shift excluded."""
    return sum(p.numel() for name, p in model.named_parameters() if "_mean." not in name)


def count_macs(model: JSNet, output_hw: tuple[int, int] = (720, 1280)) -> int:
    """Convolution multiply-adds for one image whose *output* is `output_hw` (H, W).

    The paper reports SR cost for a 1280x720 output, whatever the scale.
    """
    h = max(1, round(output_hw[0] / model.scale))
    w = max(1, round(output_hw[1] / model.scale))
    total = 0

    def hook(module: nn.Conv2d, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1]
        total += out.numel() * (module.in_channels // module.groups) * k

    # Shapes only matter: a copy on the meta device makes 720p cost no memory or time.
    with torch.device("meta"):
        shadow = JSNet(model.genotype, task=model.task, colors=model.colors)
    handles = [m.register_forward_hook(hook) for m in shadow.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            shadow(torch.zeros(1, model.colors, h, w, device="meta"))
    finally:
        for hd in handles:
            hd.remove()
    return total
