"""Our model file: one safetensors file per model.

The weights are tensors; everything needed to rebuild the module (genotype, task, colour
channels) and to know where it came from (provenance) is in the safetensors metadata.
Loading never unpickles anything, so a model file cannot execute code.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from jsnet_edge.errors import GenotypeError, ModelError, OptionError
from jsnet_edge.models.fileinfo import FORMAT, FORMAT_VERSION, genotype_dict, read_metadata
from jsnet_edge.models.genotype import Genotype
from jsnet_edge.models.network import JSNet
from jsnet_edge.outputs import atomic_output, check_output
from jsnet_edge.tasks import TASKS


def save_model(
    model: JSNet, path: str | Path, *, half: bool = False, overwrite: bool = True
) -> Path:
    """Write `model` atomically (temporary file, then rename). `half` stores fp16 weights
    (the network still runs in fp32; it halves the file for the bundled zoo)."""
    path = check_output(path, overwrite=overwrite)
    tensors = {}
    for k, v in model.state_dict().items():
        v = v.detach().to("cpu")
        if half and v.is_floating_point() and "_mean." not in k:
            v = v.half()
        tensors[k] = v.contiguous()
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "genotype": model.genotype.to_json(),
        "task": model.task,
        "colors": str(model.colors),
        "provenance": json.dumps(model.provenance or {}),
    }
    with atomic_output(path, overwrite=overwrite) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def load_model(path: str | Path, device: str | torch.device = "cpu") -> JSNet:
    """A `JSNet` from one of our model files, in eval mode, fp32."""
    meta = read_metadata(path)
    genotype_dict(meta, path)  # its shape and sizes, before anything is built
    try:
        genotype = Genotype.from_json(meta["genotype"])
        task, colors = meta["task"], int(meta["colors"])
        provenance = json.loads(meta.get("provenance", "{}"))
    except (KeyError, ValueError, TypeError, GenotypeError) as e:
        raise ModelError(f"{path} has broken metadata ({e})") from None
    if colors not in (1, 3):
        raise ModelError(f"{path} has broken metadata (colors {colors}; 1 or 3)")
    if task not in TASKS:
        raise ModelError(f"{path} is for task {task!r}, which this version does not know")
    try:
        model = JSNet(genotype, task=task, colors=colors)
    except (GenotypeError, OptionError) as e:
        raise ModelError(f"{path} describes an invalid network ({e})") from None
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as e:
        raise ModelError(f"cannot read the weights of {path} ({e}); it may be corrupt") from None
    expected = model.state_dict()
    bad = sorted(set(expected) ^ set(state)) or [
        k for k in expected if state[k].shape != expected[k].shape
    ]
    if bad:
        raise ModelError(f"the weights in {path} do not match its genotype (e.g. {bad[0]})")
    model.load_state_dict({k: v.float() for k, v in state.items()})
    model.provenance = provenance
    return model.eval().to(device)
