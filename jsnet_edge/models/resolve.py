"""From what a user names (a model file, a zoo name, a loaded module) to a `JSNet`."""

from __future__ import annotations

from pathlib import Path

from jsnet_edge.errors import ModelError
from jsnet_edge.models.authors import AUTHORS, fetch
from jsnet_edge.models.modelfile import load_model
from jsnet_edge.models.network import JSNet
from jsnet_edge.zoo import ZOO, zoo_entry


def resolve_model(model: str | Path | JSNet) -> JSNet:
    """A JSNet from a loaded module, a model file, or a zoo name."""
    if isinstance(model, JSNet):
        return model
    if not isinstance(model, (str, Path)):
        raise ModelError(f"model must be a path, a zoo name or a JSNet, not {type(model).__name__}")
    path = Path(model)
    if path.is_file():
        return load_model(path)
    if str(model) in ZOO:
        return load_model(zoo_entry(str(model)).path)
    if str(model) in AUTHORS:
        return load_model(fetch(str(model)))
    if path.is_dir():
        raise ModelError(f"{model} is a folder, not a model file")
    if path.suffix or "/" in str(model):
        raise ModelError(f"model file {model} does not exist")
    return load_model(zoo_entry(str(model)).path)  # raises: unknown name, lists the zoo
