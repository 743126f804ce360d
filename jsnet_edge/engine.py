"""`jsnet-edge build-engine`: from a model to the precision-specific ONNX to an engine.

Orchestration above the stages: the ONNX comes from the exporter (fp32, fp16) or from
calibration (int8, symmetric for TensorRT), and the one TensorRT builder compiles it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jsnet_edge.calibration.quantize import CalibrationConfig, calibrate
from jsnet_edge.errors import MissingDependencyError, OptionError
from jsnet_edge.export.onnx import export_onnx
from jsnet_edge.export.tensorrt import TRT_MISSING, Profile, build_engine
from jsnet_edge.export.torch_tensorrt import compile_torch_tensorrt
from jsnet_edge.models.resolve import resolve_model
from jsnet_edge.outputs import check_output
from jsnet_edge.runtime.capabilities import has_module

VIA = ("tensorrt", "torch-tensorrt")


@dataclass(frozen=True)
class EngineConfig:
    """Options of `build_engine_for`.

    Args:
        fp16, int8: the precision (at most one); fp32 otherwise. An .onnx model keeps its own.
        calib: photographs for --int8 calibration (default: the bundled ones).
        profile: the input shapes the engine accepts and is tuned for.
        workspace_gb: the builder's workspace limit; None leaves TensorRT's own.
        via: tensorrt (our ONNX through the TensorRT builder) or torch-tensorrt.
    """

    fp16: bool = False
    int8: bool = False
    calib: Path | None = None
    profile: Profile = Profile()
    workspace_gb: float | None = 2.0
    via: str = "tensorrt"
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.fp16 and self.int8:
            raise OptionError("choose one of --fp16 and --int8")
        if self.via not in VIA:
            raise OptionError(f"--via must be tensorrt or torch-tensorrt, not {self.via!r}")
        if self.workspace_gb is not None and self.workspace_gb <= 0:
            raise OptionError(f"--workspace must be positive, got {self.workspace_gb:g}")


def build_engine_for(
    model: str, output: Path, cfg: EngineConfig, log: Callable[[str], None] = lambda s: None
) -> Path:
    """Build an engine (and its sidecar) for a model file, zoo name or our .onnx file."""
    output = check_output(output, overwrite=cfg.overwrite)
    if cfg.via == "torch-tensorrt":
        return compile_torch_tensorrt(model, output, fp16=cfg.fp16, profile=cfg.profile)
    if not has_module("tensorrt"):
        raise MissingDependencyError(TRT_MISSING)
    build = dict(profile=cfg.profile, workspace_gb=cfg.workspace_gb, overwrite=cfg.overwrite)
    if Path(model).suffix.lower() == ".onnx":
        if cfg.fp16 or cfg.int8:
            raise OptionError("an .onnx file already fixes its precision; drop --fp16/--int8")
        return build_engine(Path(model), output, **build)
    net = resolve_model(model)
    with tempfile.TemporaryDirectory(prefix="jsnet-engine-") as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        if cfg.int8:
            report = calibrate(
                net, onnx_path, CalibrationConfig(data=cfg.calib, target="tensorrt"), log=log
            )
            log(report.summary())
            if report.shortfall():  # the best trade-off found still makes an engine
                log(f"note: {report.shortfall()}")
        else:
            export_onnx(net, onnx_path, precision="fp16" if cfg.fp16 else "fp32")
        return build_engine(onnx_path, output, **build)
