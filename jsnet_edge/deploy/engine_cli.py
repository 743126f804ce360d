"""`jsnet-edge build-engine`: from a model to the precision-specific ONNX to an engine."""

from __future__ import annotations

import tempfile
from pathlib import Path

from jsnet_edge.deploy.factory import has_module
from jsnet_edge.errors import MissingDependencyError, OptionError


def build_engine_command(
    model: str,
    output: Path,
    *,
    fp16: bool,
    int8: bool,
    calib: Path | None,
    min_shape: str,
    opt_shape: str,
    max_shape: str,
    workspace: float,
    via: str,
    overwrite: bool,
    log,
) -> Path:
    from jsnet_edge.deploy.export import parse_size
    from jsnet_edge.deploy.tensorrt_engine import TRT_MISSING, Profile, build_engine

    if fp16 and int8:
        raise OptionError("choose one of --fp16 and --int8")
    if via not in ("tensorrt", "torch-tensorrt"):
        raise OptionError(f"--via must be tensorrt or torch-tensorrt, not {via!r}")
    if output.exists() and not overwrite:
        raise OptionError(f"{output} exists; pass --overwrite to replace it")
    profile = Profile(parse_size(min_shape), parse_size(opt_shape), parse_size(max_shape))
    if via == "torch-tensorrt":
        from jsnet_edge.deploy.torch_tensorrt_build import compile_torch_tensorrt

        return compile_torch_tensorrt(model, output, fp16=fp16, profile=profile)
    if not has_module("tensorrt"):
        raise MissingDependencyError(TRT_MISSING)
    if Path(model).suffix.lower() == ".onnx":
        if fp16 or int8:
            raise OptionError("an .onnx file already fixes its precision; drop --fp16/--int8")
        return build_engine(
            Path(model), output, profile=profile, workspace_gb=workspace, overwrite=overwrite
        )
    from jsnet_edge.restorer import resolve_model

    net = resolve_model(model)
    with tempfile.TemporaryDirectory(prefix="jsnet-engine-") as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        if int8:
            from jsnet_edge.calibration.quantize import CalibrationConfig, calibrate

            report = calibrate(
                net, onnx_path, CalibrationConfig(data=calib, target="tensorrt"), log=log
            )
            log(report.summary())
        else:
            from jsnet_edge.deploy.export import export_onnx

            export_onnx(net, onnx_path, precision="fp16" if fp16 else "fp32")
        return build_engine(
            onnx_path, output, profile=profile, workspace_gb=workspace, overwrite=overwrite
        )
