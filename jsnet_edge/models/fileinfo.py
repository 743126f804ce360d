"""What a model file is, read without building the network (and without importing torch):
its metadata, and the input-size rules its genotype implies. So that a model whose
exported graph is cached runs without the seconds torch takes to import (the first video
frame, `jsnet-edge image` on one photo)."""

from __future__ import annotations

import json
from pathlib import Path

from jsnet_edge.errors import ModelError

FORMAT = "jsnet-edge.model"
FORMAT_VERSION = "1"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".bin", ".tar")
ESAB_MIN_SIZE = 15  # the ESAB attention's strided conv and pool need this many pixels
# Bounds on a genotype's sizes, checked before a network is built: a hostile or damaged
# file (width 100000, 100000 cells) must be refused in one line, not allocate for minutes.
MAX_SIZES = {"width": 1024, "cells": 256, "nodes": 16, "unshuffle": 16}
MAX_WEIGHT_BYTES = 2 * 2**30  # an upper bound on the fp32 weights (the paper's: 2 MB)


def weight_bytes_bound(width: int, cells: int, nodes: int) -> int:
    """An upper bound on a JSNet's fp32 weights: every edge at most ~20 3x3 convolutions of
    the cell width 4C (the paper's network: 1.9 MB against a bound of 11 MB)."""
    f, edges = 4 * width, nodes * (nodes + 1) // 2
    return 4 * f * f * (cells * (20 * edges + 10) + 20)


def size_problem(genotype: object) -> str | None:
    """What is wrong with a genotype's shape and sizes (given as its dict), or None."""
    if not isinstance(genotype, dict):
        return f"the genotype must be a JSON object, not a {type(genotype).__name__}"
    sizes = {}
    for name, high in MAX_SIZES.items():
        v = genotype.get(name, 1)
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= high:
            return f"genotype {name} must be an integer from 1 to {high}, got {v!r}"
        sizes[name] = v
    if not isinstance(genotype.get("recurrent", False), bool):
        return "genotype recurrent must be true or false"
    if not isinstance(genotype.get("csfm", True), bool):
        return "genotype csfm must be true or false"
    for name in ("ops", "attentions"):
        v = genotype.get(name, [])
        if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
            return f"genotype {name} must be a list of names"
    need = weight_bytes_bound(sizes["width"], sizes["cells"], sizes["nodes"])
    if need > MAX_WEIGHT_BYTES:
        return (
            f"the genotype describes a network of up to {need / 2**30:,.0f} GB of weights "
            f"(width {sizes['width']}, {sizes['cells']} cells, {sizes['nodes']} nodes); "
            f"more than {MAX_WEIGHT_BYTES / 2**30:g} GB is refused"
        )
    return None


def looks_like_torch_file(path: Path) -> bool:
    """torch.save writes a zip archive (current) or a pickle stream (legacy)."""
    with open(path, "rb") as f:
        head = f.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a model file, checked to be ours."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a model file" if path.is_dir() else "does not exist"
        raise ModelError(f"model file {path} {what}")
    if path.suffix.lower() in PICKLE_SUFFIXES:
        if not looks_like_torch_file(path):
            raise ModelError(f"{path} is neither a jsnet-edge model nor a PyTorch checkpoint")
        raise ModelError(
            f"{path} looks like a PyTorch checkpoint, not a jsnet-edge model; convert it with "
            f"`jsnet-edge convert-official {path} --scale S -o model.safetensors`"
        )
    if path.suffix.lower() == ".onnx":
        raise ModelError(
            f"{path} is an ONNX file; use it with an ONNX backend, or pass the "
            "safetensors model it was exported from"
        )
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelError(
            f"cannot read {path} as a safetensors model file ({e}); it may be corrupt or truncated"
        ) from None
    if meta.get("format") != FORMAT:
        raise ModelError(
            f"{path} is a safetensors file but not a jsnet-edge model (its "
            "metadata has no genotype/task); only files written by jsnet-edge load"
        )
    return meta


def size_rules(genotype: dict) -> tuple[int, int]:
    """(smallest input side, multiple the sides must be) of a genotype given as its dict:
    ESAB needs `ESAB_MIN_SIZE` pixels in the body, which runs at 1/unshuffle."""
    s = int(genotype.get("unshuffle", 1))
    return (ESAB_MIN_SIZE * s if "esab" in genotype.get("attentions", ()) else s), s


def genotype_dict(meta: dict[str, str], path: Path | str) -> dict:
    """The genotype of a model file's metadata, its shape and sizes checked."""
    try:
        genotype = json.loads(meta["genotype"])
    except (KeyError, ValueError) as e:
        raise ModelError(f"{path} has broken metadata ({e})") from None
    problem = size_problem(genotype)
    if problem:
        raise ModelError(f"{path} describes an invalid network: {problem}")
    return genotype
