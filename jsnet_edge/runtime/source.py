"""What a model is, whatever file it came from: a JSNet (a .safetensors file, a zoo name),
an .onnx file exported or calibrated by jsnet-edge (its precision is in the file), or a
TensorRT .engine (with its JSON sidecar)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from jsnet_edge.errors import OptionError
from jsnet_edge.export.onnx import onnx_identity, read_onnx_metadata
from jsnet_edge.export.tensorrt import read_sidecar
from jsnet_edge.models.genotype import Genotype
from jsnet_edge.models.network import JSNet
from jsnet_edge.models.resolve import resolve_model
from jsnet_edge.zoo import ZOO

ENGINE_SUFFIXES = (".engine", ".plan")


@dataclass(frozen=True)
class ModelInfo:
    """What the Restorer needs to know about a model, whatever file it came from."""

    task: str
    scale: int
    colors: int
    min_size: int
    genotype: Genotype
    precision: str | None = None  # fixed by the file (ONNX, engine); None for a JSNet
    provenance: dict = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, net: JSNet) -> ModelInfo:
        return cls(
            net.task, net.scale, net.colors, net.min_size, net.genotype, None, net.provenance
        )


@dataclass(frozen=True)
class ModelSource:
    info: ModelInfo
    net: JSNet | None = None
    onnx: Path | None = None
    engine: Path | None = None


def load_source(model: str | Path | JSNet, precision: str | None = None) -> ModelSource:
    """Read what `model` names; `precision="int8"` with a zoo name takes the calibrated
    INT8 file shipped with that model."""
    if precision == "int8" and isinstance(model, str) and model in ZOO:
        if not ZOO[model].int8_path.is_file():
            raise OptionError(
                f"the zoo has no INT8 file for {model!r}; make one with "
                f"`jsnet-edge calibrate {model} -o {model}-int8.onnx`"
            )
        model = str(ZOO[model].int8_path)
    suffix = Path(model).suffix.lower() if isinstance(model, (str, Path)) else ""
    if suffix == ".onnx":
        meta = read_onnx_metadata(model)
        task, scale, colors, min_size, genotype = onnx_identity(meta)
        info = ModelInfo(
            task,
            scale,
            colors,
            min_size,
            genotype,
            meta["precision"],
            json.loads(meta.get("provenance", "{}")),
        )
        return ModelSource(info, onnx=Path(model))
    if suffix in ENGINE_SUFFIXES:
        side = read_sidecar(Path(model))
        info = ModelInfo(
            side["task"],
            side["scale"],
            side["colors"],
            side["min_size"],
            Genotype.from_dict(side["genotype"]),
            side["precision"],
            {},
        )
        return ModelSource(info, engine=Path(model))
    net = resolve_model(model)
    return ModelSource(ModelInfo.of(net), net=net)
