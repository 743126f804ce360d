"""Training checkpoints (`train`, `calibrate --qat`), in safetensors like everything else we write.

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
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    meta: dict,
    fmt: str = FORMAT,
) -> None:
    # Cloned: quantised networks share one quantiser between the inputs of a concat, and
    # safetensors refuses tensors that share memory.
    tensors = {
        f"model.{k}": v.detach().cpu().clone(memory_format=torch.contiguous_format)
        for k, v in model.state_dict().items()
    }
    opt = optimizer.state_dict()
    for idx, state in opt["state"].items():
        for name, value in state.items():
            t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"optim.{idx}.{name}"] = t.detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    header = {
        "format": fmt,
        "meta": json.dumps(meta),
        "param_groups": json.dumps(opt["param_groups"]),
    }
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)


def read_meta(path: Path, fmt: str = FORMAT) -> dict:
    """The JSON metadata of a checkpoint, without loading its tensors."""
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError) as e:
        raise ModelError(f"cannot read checkpoint {path} ({e}); it may be corrupt") from None
    if header.get("format") != fmt:
        raise ModelError(f"{path} is not a {fmt} checkpoint")
    return json.loads(header["meta"])


def load_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, fmt: str = FORMAT
) -> dict:
    """Restore model, optimizer and torch RNG; return the metadata saved with them."""
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise ModelError(f"cannot read checkpoint {path} ({e}); it may be corrupt") from None
    if header.get("format") != fmt:
        raise ModelError(f"{path} is not a {fmt} checkpoint")
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
