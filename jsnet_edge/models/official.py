"""Loading the authors' released checkpoints into our module.

Their checkpoints are plain PyTorch state dicts. We read them with `weights_only=True` (no
code runs), fold the weight normalisation of the CSFM's channel attention into plain
weights, and rename the two modules whose names differ from ours (`cpam` -> `csfm`,
`up` -> `tail`).
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import torch

from jsnet_edge.errors import ModelError
from jsnet_edge.models.fileinfo import looks_like_torch_file
from jsnet_edge.models.genotype import PAPER, Genotype
from jsnet_edge.models.network import JSNet
from jsnet_edge.models.weight_norm import fold_weight_norm

RENAMES = (("cpam.", "csfm."), ("up.", "tail."))
WRAPPER_KEYS = ("state_dict", "model", "params_ema", "params", "net")


def read_foreign_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a foreign (pickle-based) checkpoint, loaded without running code."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a checkpoint" if path.is_dir() else "does not exist"
        raise ModelError(f"checkpoint {path} {what}")
    if not looks_like_torch_file(path):
        raise ModelError(
            f"cannot read {path}: it is not a PyTorch checkpoint (neither a zip nor a pickle "
            "file); give the authors' .pt file"
        )
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols; not for users
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch.load raises many kinds on foreign bytes
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(
            f"cannot read {path} as a PyTorch checkpoint ({first[:160]}); it may be corrupt, "
            "truncated, or not a checkpoint"
        ) from None
    for key in WRAPPER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(f"{path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def checkpoint_scale(state: dict[str, torch.Tensor]) -> int:
    """The SR scale a JSNet checkpoint was trained for, read from its upsampler's shapes."""
    if "up.0.weight" not in state:
        raise ModelError("not a JSNet SR checkpoint: it has no upsampler (up.0.weight)")
    if "up.4.weight" in state:
        return 4
    width = state["up.0.weight"].shape[1]
    ratio = state["up.0.weight"].shape[0] // max(width, 1)
    return {4: 2, 9: 3}.get(ratio, 0)


def _rename(key: str) -> str:
    for old, new in RENAMES:
        if key.startswith(old):
            return new + key[len(old) :]
    return key


def foreign_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A foreign checkpoint's tensors under our names, weight norm folded (for `--init`)."""
    return {_rename(k): v for k, v in fold_weight_norm(read_foreign_checkpoint(path)).items()}


def load_official(path: str | Path, scale: int, genotype: Genotype = PAPER) -> JSNet:
    """The authors' x`scale` SR checkpoint as a `JSNet` with plain (folded) weights."""
    if scale not in (2, 3, 4):
        raise ModelError(f"the authors released x2, x3 and x4 checkpoints, not x{scale}")
    state = read_foreign_checkpoint(path)
    if "head.weight" not in state or not any(k.startswith("cells.") for k in state):
        raise ModelError(f"{path} is not a JSNet checkpoint (no head or cells tensors)")
    found = checkpoint_scale(state)
    if found != scale:
        hint = f"; use --scale {found}" if found else ""
        raise ModelError(f"{path} is an x{found or '?'} checkpoint, not x{scale}{hint}")
    colors = state["head.weight"].shape[1]
    model = JSNet(genotype, task=f"sr-x{scale}", colors=colors)
    state = {_rename(k): v for k, v in fold_weight_norm(state).items()}
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
            for label, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("other shape", wrong),
            )
            if keys
        )
        raise ModelError(
            f"{path} does not match JSNet with genotype {genotype.to_string()} ({detail})"
        )
    model.load_state_dict(state)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    model.provenance = {
        "source": "authors' released checkpoint, converted by jsnet-edge convert-official",
        "checkpoint": Path(path).name,
        "checkpoint_sha256": digest,
    }
    return model.eval()
