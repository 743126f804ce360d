"""What a model is, whatever file it came from: a JSNet (a .safetensors file, a zoo name, a
module), an .onnx file exported or calibrated by jsnet-edge (its precision is in the file),
or a TensorRT .engine (with its JSON sidecar).

Read without building the network where that is enough: a model file's identity is in its
metadata, and its graph may already be in the export cache (`export_cache`), so an ONNX
runtime can start without importing torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from jsnet_edge.errors import ModelError, OptionError
from jsnet_edge.export.graph import onnx_identity, read_onnx_metadata
from jsnet_edge.export.tensorrt import read_sidecar
from jsnet_edge.models.authors import AUTHORS, fetch
from jsnet_edge.models.fileinfo import genotype_dict, read_metadata, size_rules
from jsnet_edge.tasks import TASKS, task_scale
from jsnet_edge.zoo import ZOO, zoo_entry

if TYPE_CHECKING:
    from jsnet_edge.models.genotype import Genotype
    from jsnet_edge.models.network import JSNet

ENGINE_SUFFIXES = (".engine", ".plan")


@dataclass(frozen=True)
class ModelInfo:
    """What the Restorer needs to know about a model, whatever file it came from.

    `genotype_json` is kept as text: parsing it builds blocks (torch), which running an
    exported graph does not need; `genotype` parses it when asked.
    """

    task: str
    scale: int
    colors: int
    min_size: int
    multiple: int  # input sides must be multiples of this (the unshuffle factor)
    genotype_json: str
    precision: str | None = None  # fixed by the file (ONNX, engine); None for a JSNet
    provenance: dict = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, net: JSNet) -> ModelInfo:
        return cls(
            net.task,
            net.scale,
            net.colors,
            net.min_size,
            net.size_multiple,
            net.genotype.to_json(),
            None,
            net.provenance,
        )

    @cached_property
    def recurrent(self) -> bool:
        """Whether the network also reads the previous restored frame (video), read from
        the genotype's text without building it."""
        return json.loads(self.genotype_json).get("recurrent", False) is True

    @cached_property
    def genotype(self) -> Genotype:
        from jsnet_edge.models.genotype import Genotype

        return Genotype.from_json(self.genotype_json)


@dataclass
class ModelSource:
    """A model to open: its identity, and what holds it. `net` is loaded on demand from
    `model_file` (`load_net`) by the runtimes that need the module (torch, an export)."""

    info: ModelInfo
    net: JSNet | None = None
    model_file: Path | None = None  # the .safetensors file a JSNet comes from
    onnx: Path | None = None
    engine: Path | None = None
    int8: Path | None = None  # a zoo model's shipped INT8 file, for precision="auto"

    def load_net(self) -> JSNet:
        if self.net is None:
            from jsnet_edge.models.modelfile import load_model

            self.net = load_model(self.model_file)
        return self.net


def model_file_of(model: str | Path) -> Path | None:
    """The .safetensors file a name stands for (a path, a zoo name, or an authors' model,
    fetched on first use), None otherwise."""
    path = Path(model)
    if path.is_file() and path.suffix.lower() == ".safetensors":
        return path
    if str(model) in ZOO:
        return zoo_entry(str(model)).path
    if str(model) in AUTHORS:
        return fetch(str(model))
    return None


def info_of_file(path: Path) -> ModelInfo:
    """A model file's identity from its metadata alone (no network built, no torch)."""
    meta = read_metadata(path)
    genotype = genotype_dict(meta, path)
    task = meta.get("task")
    if task not in TASKS:
        raise ModelError(f"{path} is for task {task!r}, which this version does not know")
    try:
        colors = int(meta["colors"])
        if colors not in (1, 3):
            raise ValueError(f"colors {colors}; 1 or 3")
        min_size, multiple = size_rules(genotype)
        provenance = json.loads(meta.get("provenance", "{}"))
    except (KeyError, ValueError, TypeError) as e:
        raise ModelError(f"{path} has broken metadata ({e})") from None
    return ModelInfo(
        task, task_scale(task), colors, min_size, multiple, meta["genotype"], None, provenance
    )


def load_source(model, precision: str | None = None) -> ModelSource:
    """Read what `model` names; `precision="int8"` with a zoo name takes the calibrated
    INT8 file shipped with that model."""
    if precision == "int8" and isinstance(model, str) and model in ZOO:
        if not ZOO[model].int8_path.is_file():
            raise OptionError(
                f"the zoo has no INT8 file for {model!r}; make one with "
                f"`jsnet-edge calibrate {model} -o {model}-int8.onnx`"
            )
        model = str(ZOO[model].int8_path)
    if not isinstance(model, (str, Path)):  # a module
        from jsnet_edge.models.resolve import resolve_model

        net = resolve_model(model)
        return ModelSource(ModelInfo.of(net), net=net)
    suffix = Path(model).suffix.lower()
    if suffix == ".onnx":
        meta = read_onnx_metadata(model)
        task, scale, colors, min_size, genotype = onnx_identity(meta)
        multiple = size_rules(json.loads(genotype))[1]
        info = ModelInfo(
            task,
            scale,
            colors,
            min_size,
            multiple,
            genotype,
            meta["precision"],
            json.loads(meta.get("provenance", "{}")),
        )
        return ModelSource(info, onnx=Path(model))
    if suffix in ENGINE_SUFFIXES:
        side = read_sidecar(Path(model))
        genotype = json.dumps(side["genotype"])
        info = ModelInfo(
            side["task"],
            side["scale"],
            side["colors"],
            side["min_size"],
            size_rules(side["genotype"])[1],
            genotype,
            side["precision"],
            {},
        )
        return ModelSource(info, engine=Path(model))
    path = model_file_of(model)
    if path is not None:
        int8 = ZOO[str(model)].int8_path if str(model) in ZOO else None
        int8 = int8 if int8 is not None and int8.is_file() else None
        return ModelSource(info_of_file(path), model_file=path, int8=int8)
    from jsnet_edge.models.resolve import resolve_model  # raises the clear error

    net = resolve_model(model)
    return ModelSource(ModelInfo.of(net), net=net)
