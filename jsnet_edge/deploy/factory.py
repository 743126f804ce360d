"""From "a model and a backend name" to a running `Backend`.

A model is a JSNet (from a .safetensors file or the zoo), an .onnx file exported or
calibrated by jsnet-edge (its precision is in the file), or a TensorRT .engine (with its
JSON sidecar). This module checks that the three fit together and says why when they
do not, and picks the backend for `backend="auto"`.
"""

from __future__ import annotations

import importlib.util
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from jsnet_edge.deploy.backend import PRECISIONS, Backend
from jsnet_edge.errors import ModelError, OptionError
from jsnet_edge.models.genotype import Genotype
from jsnet_edge.models.network import JSNet

BACKENDS = ("auto", "torch", "onnxruntime", "openvino", "tensorrt")


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


@dataclass
class ModelSource:
    info: ModelInfo
    net: JSNet | None = None
    onnx: Path | None = None
    engine: Path | None = None


def load_source(model: str | Path | JSNet, precision: str | None = None) -> ModelSource:
    from jsnet_edge.restorer import resolve_model
    from jsnet_edge.zoo import ZOO

    if precision == "int8" and isinstance(model, str) and model in ZOO:
        if not ZOO[model].int8_path.is_file():
            raise OptionError(
                f"the zoo has no INT8 file for {model!r}; make one with "
                f"`jsnet-edge calibrate {model} -o {model}-int8.onnx`"
            )
        model = str(ZOO[model].int8_path)  # the calibrated file shipped with the model

    if isinstance(model, (str, Path)) and Path(model).suffix.lower() == ".onnx":
        import json

        from jsnet_edge.deploy.export import onnx_identity, read_onnx_metadata

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
    if isinstance(model, (str, Path)) and Path(model).suffix.lower() in (".engine", ".plan"):
        from jsnet_edge.deploy.tensorrt_engine import read_sidecar

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


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def auto_backend(source: ModelSource, device: str, precision: str) -> str:
    """The fastest backend installed for this device and precision.

    CPU: OpenVINO, else onnxruntime. On JSNet x2 at 320x180, fp32: OpenVINO 301 ms vs
    onnxruntime 390 ms on a 2-core Xeon (AMX), 434 vs 444 ms on a 2-core EPYC (Zen 4,
    benchmarks/results); torch eager is slower than both (585 / 573 ms). bf16 and int8 are
    fastest in OpenVINO on both. CUDA: TensorRT where it imports, else torch.
    """
    if source.engine is not None:
        return "tensorrt"
    if device.startswith("cuda"):
        if has_module("tensorrt") and (source.onnx is not None or source.net is not None):
            return "tensorrt"
        if source.net is None:
            return "onnxruntime"
        return "torch"
    file_precision = source.info.precision
    if file_precision == "fp16":
        return "onnxruntime"
    if has_module("openvino"):
        return "openvino"
    if precision == "bf16" and source.net is not None:
        return "torch"
    return "onnxruntime"


def resolve_precision(source: ModelSource, backend: str, precision: str | None) -> str:
    own = source.info.precision
    if precision is None:
        return own or "fp32"
    if precision not in PRECISIONS:
        raise OptionError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if own is not None and precision != own:
        # An fp32 ONNX may still run in bf16 inside OpenVINO (a runtime choice).
        if not (backend == "openvino" and own == "fp32" and precision == "bf16"):
            raise OptionError(
                f"this file holds a {own} network, so it runs in {own}, not "
                f"{precision}; export or calibrate another file for {precision}"
            )
    if precision == "int8" and source.net is not None:
        raise OptionError(
            "int8 needs a calibrated ONNX file: run `jsnet-edge calibrate MODEL "
            "-o model_int8.onnx` and pass that file as the model"
        )
    return precision


def open_backend(
    source: ModelSource,
    backend: str,
    device: str,
    precision: str | None,
    keep: list,
    *,
    compile: bool = False,
) -> Backend:
    """A ready backend. Temporary files it needs are appended to `keep` (kept alive)."""
    if backend not in BACKENDS:
        raise OptionError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = auto_backend(source, device, precision or source.info.precision or "fp32")
    if compile and backend != "torch":
        raise OptionError(f"compile (torch.compile) needs the torch backend, not {backend}")
    precision = resolve_precision(source, backend, precision)
    if backend == "torch":
        if source.net is None:
            raise OptionError(
                "the torch backend runs .safetensors models and zoo names; use "
                "onnxruntime/openvino for .onnx and tensorrt for .engine files"
            )
        from jsnet_edge.deploy.torch_backend import TorchBackend

        return TorchBackend(source.net, device=device, precision=precision, compile=compile)
    if backend == "tensorrt":
        from jsnet_edge.deploy.tensorrt_backend import TensorRTBackend

        if source.engine is None:
            raise OptionError(
                "the tensorrt backend runs engines: build one with `jsnet-edge "
                "build-engine MODEL -o model.engine` and pass the .engine file"
            )
        return TensorRTBackend(source.engine, device=device)
    if source.engine is not None:
        raise OptionError(f"a TensorRT engine runs on the tensorrt backend, not {backend}")
    onnx_path = source.onnx
    if onnx_path is None:
        from jsnet_edge.deploy.export import export_onnx

        tmp = tempfile.TemporaryDirectory(prefix="jsnet-edge-")
        keep.append(tmp)
        file_precision = "fp16" if (backend == "onnxruntime" and precision == "fp16") else "fp32"
        if backend == "onnxruntime" and precision == "bf16":
            raise OptionError("onnxruntime has no bf16 CPU path; use the openvino or torch backend")
        onnx_path = export_onnx(source.net, Path(tmp.name) / "model.onnx", precision=file_precision)
    if backend == "onnxruntime":
        from jsnet_edge.deploy.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(onnx_path, precision=precision, device=device)
    if backend == "openvino":
        from jsnet_edge.deploy.openvino_backend import OpenVinoBackend

        if source.info.precision == "fp16":
            raise ModelError(
                "OpenVINO runs the fp32 or int8 ONNX; for 16-bit on the CPU pass the "
                "fp32 file with precision bf16"
            )
        return OpenVinoBackend(onnx_path, precision=precision, device=device)
    raise AssertionError(backend)
