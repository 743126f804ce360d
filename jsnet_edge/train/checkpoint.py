"""Training checkpoints, in safetensors like everything else we write.

A checkpoint holds the model and Adam state as tensors, and the step, the data sampler's
random state and the config as JSON metadata. No pickles: resuming a run never executes
code from a file.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from jsnet_edge.errors import ModelError
from jsnet_edge.outputs import atomic_output

FORMAT = "jsnet-edge.train-checkpoint"


def save_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, meta: dict
) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for idx, state in opt["state"].items():
        for name, value in state.items():
            t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"optim.{idx}.{name}"] = t.detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    header = {
        "format": FORMAT,
        "meta": json.dumps(meta),
        "param_groups": json.dumps(opt["param_groups"]),
    }
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Restore model, optimizer and torch RNG; return the metadata saved with them."""
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise ModelError(f"cannot read checkpoint {path} ({e}); it may be corrupt") from None
    if header.get("format") != FORMAT:
        raise ModelError(f"{path} is not a jsnet-edge training checkpoint")
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_state)
    except RuntimeError:
        raise ModelError(
            f"checkpoint {path} was made for another network (genotype, task or "
            "colours differ); start a new run or pass the same options"
        ) from None
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, idx, name = k.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(header["param_groups"])})
    torch.set_rng_state(tensors["rng.torch"])
    return json.loads(header["meta"])
