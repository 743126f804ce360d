"""`jsnet-edge build-engine`: from a model to the precision-specific ONNX to an engine.

Orchestration above the stages: the ONNX comes from the exporter (fp32, fp16) or from
calibration (int8, symmetric for TensorRT); it is checked against torch fp32 on a
photograph with a stated tolerance (as TensorRT's own samples check each stage), and only
then compiled by the one TensorRT builder: classic TensorRT on the GPU it is for, or
TensorRT for RTX ahead of time on any machine.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from jsnet_edge.calibration.quantize import CalibrationConfig, calibrate
from jsnet_edge.errors import MissingDependencyError, OptionError
from jsnet_edge.export.onnx import export_onnx
from jsnet_edge.export.tensorrt import (
    TRT_MISSING,
    BuiltEngine,
    Profile,
    build_engine,
    has_tensorrt,
)
from jsnet_edge.export.torch_tensorrt import compile_torch_tensorrt
from jsnet_edge.export.verify import StageCheck, check_stage, verify_onnx
from jsnet_edge.models.resolve import resolve_model
from jsnet_edge.outputs import check_output

VIA = ("tensorrt", "torch-tensorrt")


@dataclass(frozen=True)
class EngineConfig:
    """Options of `build_engine_for`.

    Args:
        fp16, int8: the precision (at most one); fp32 otherwise. An .onnx model keeps its own.
        calib: photographs for --int8 calibration (default: the bundled ones).
        profile: the input shapes the engine accepts and is tuned for.
        compute_capabilities: TensorRT for RTX: the GPUs to build for ("8.6", "12.0",
            "current"); None: the builder's own set. Classic TensorRT builds for its GPU.
        workspace_gb: the builder's workspace limit; None leaves TensorRT's own.
        via: tensorrt (our ONNX through the TensorRT builder) or torch-tensorrt.
    """

    fp16: bool = False
    int8: bool = False
    calib: Path | None = None
    profile: Profile = Profile()
    compute_capabilities: tuple[str, ...] | None = None
    workspace_gb: float | None = None
    via: str = "tensorrt"
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.fp16 and self.int8:
            raise OptionError("choose one of --fp16 and --int8")
        if self.via not in VIA:
            raise OptionError(f"--via must be tensorrt or torch-tensorrt, not {self.via!r}")
        if self.workspace_gb is not None and self.workspace_gb <= 0:
            raise OptionError(f"--workspace must be positive, got {self.workspace_gb:g}")

    @property
    def precision(self) -> str:
        return "fp16" if self.fp16 else "int8" if self.int8 else "fp32"


@dataclass
class EngineReport:
    """What was built, and how each stage compared with torch fp32."""

    engine: BuiltEngine
    checks: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"built {self.engine.path}: {self.engine.describe()}"]
        return "\n".join(lines + [f"check: {c}" for c in self.checks])


def build_engine_for(
    model: str, output: Path, cfg: EngineConfig, log: Callable[[str], None] = lambda s: None
) -> EngineReport:
    """Build an engine (and its sidecar) for a model file, zoo name or our .onnx file."""
    output = check_output(output, overwrite=cfg.overwrite, inputs=[model])
    if cfg.via == "torch-tensorrt":
        path = compile_torch_tensorrt(model, output, fp16=cfg.fp16, profile=cfg.profile)
        return EngineReport(BuiltEngine(path, {}, 0.0))
    if not has_tensorrt():
        raise MissingDependencyError(TRT_MISSING)
    build = dict(
        profile=cfg.profile,
        compute_capabilities=cfg.compute_capabilities,
        workspace_gb=cfg.workspace_gb,
        overwrite=cfg.overwrite,
    )
    if Path(model).suffix.lower() == ".onnx":
        if cfg.fp16 or cfg.int8:
            raise OptionError("an .onnx file already fixes its precision; drop --fp16/--int8")
        note = "an .onnx file is built as it is (its calibration report states its loss)"
        return EngineReport(build_engine(Path(model), output, **build), [note])
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
            export_onnx(net, onnx_path, precision=cfg.precision)
        if cfg.precision == "fp32":
            diff = verify_onnx(net, onnx_path)
            checks = [f"fp32 ONNX vs torch: max abs difference {diff:.2g} (tolerance 1e-3)"]
        else:
            stage: StageCheck = check_stage(net, onnx_path, cfg.precision)
            checks = [stage.describe()]
        return EngineReport(build_engine(onnx_path, output, **build), checks)
