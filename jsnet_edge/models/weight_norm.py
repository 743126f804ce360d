"""Weight normalisation of the CSFM's channel attentions: the authors train with it, and
every file we write holds it folded into plain weights.

Two forms of one rule: on a module (`apply_weight_norm` for training, `remove_weight_norm`
before saving) and on a state dict (`fold_weight_norm`, for the authors' checkpoints,
which store `weight_g` / `weight_v` pairs).
"""

from __future__ import annotations

import torch
from torch import nn

from jsnet_edge.models.network import JSNet


def _weight_norm_convs(model: JSNet) -> list[nn.Conv2d]:
    return [
        m
        for name, m in model.csfm.named_modules()
        if isinstance(m, nn.Conv2d) and name.startswith("ca_")
    ]


def apply_weight_norm(model: JSNet) -> None:
    for conv in _weight_norm_convs(model):
        nn.utils.parametrizations.weight_norm(conv, "weight", dim=0)


def remove_weight_norm(model: JSNet) -> None:
    """Fold the parametrisation back into plain weights (same outputs)."""
    for conv in _weight_norm_convs(model):
        if nn.utils.parametrize.is_parametrized(conv, "weight"):
            nn.utils.parametrize.remove_parametrizations(conv, "weight", leave_parametrized=True)


def fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace every (weight_g, weight_v) pair by the plain weight g * v / ||v|| (dim 0)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(".weight_g"):
            continue
        if key.endswith(".weight_v"):
            prefix = key[: -len("weight_v")]
            g = state[prefix + "weight_g"]
            norm = value.flatten(1).norm(dim=1).view(-1, *([1] * (value.dim() - 1)))
            out[prefix + "weight"] = g * value / norm
        else:
            out[key] = value
    return out
