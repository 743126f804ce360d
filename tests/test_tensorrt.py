"""TensorRT engines built for real, with TensorRT for RTX, which compiles ahead of time
without a GPU (CI has none): every zoo model in fp32 and fp16, int8 for the real-time
models and a paper-size one, from our own exported and calibrated ONNX. Running an engine
needs an NVIDIA GPU; here we check that it refuses in one clear line."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli
from jsnet_edge.calibration.quantize import CalibrationConfig, calibrate
from jsnet_edge.engine import EngineConfig, build_engine_for
from jsnet_edge.errors import OptionError
from jsnet_edge.export.graph import read_onnx_metadata
from jsnet_edge.export.onnx import export_onnx
from jsnet_edge.export.tensorrt import (
    RTX_DEFAULT_CAPABILITIES,
    Profile,
    build_engine,
    import_tensorrt,
    parse_compute_capabilities,
    read_sidecar,
    sha256,
)
from jsnet_edge.export.verify import check_stage
from jsnet_edge.images import sample_images
from jsnet_edge.models.resolve import resolve_model
from jsnet_edge.zoo import ZOO

try:
    TRT = import_tensorrt()
except Exception:  # noqa: BLE001
    TRT = None
pytestmark = pytest.mark.skipif(
    TRT is None, reason="no TensorRT here: pip install -e '.[dev,tensorrt-rtx]' (CI installs it)"
)

# A profile that still covers a 640x360 video frame, smaller than the default 1920x1088 so
# that the paper-size networks build quickly.
PROFILE = Profile(min=(64, 64), opt=(320, 192), max=(640, 384))


def check_sidecar(engine, precision: str, task: str) -> dict:
    side = read_sidecar(engine)
    assert side["builder"] == TRT.name and side["builder_version"] == TRT.version
    assert side["precision"] == precision and side["task"] == task
    assert side["engine_sha256"] == sha256(engine) and engine.stat().st_size > 100_000
    if TRT.rtx:
        assert side["gpu"] is None and side["compute_capabilities"]
    return side


@pytest.mark.parametrize("name", sorted(ZOO))
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_every_zoo_model_builds_an_engine(name, precision, tmp_path):
    cfg = EngineConfig(fp16=precision == "fp16", profile=PROFILE)
    report = build_engine_for(name, tmp_path / f"{name}.engine", cfg)
    side = check_sidecar(report.engine.path, precision, ZOO[name].task)
    assert side["profile"]["max"][2:] == [384, 640]
    assert ("max abs difference" if precision == "fp32" else "loss") in report.checks[0]
    if TRT.rtx:
        assert side["compute_capabilities"] == list(RTX_DEFAULT_CAPABILITIES)


@pytest.mark.parametrize("name", ["denoise-rt", "sr-x2-rt", "sr-x2"])
def test_int8_engines_from_our_calibrated_onnx(name, tmp_path):
    net = resolve_model(name)
    quick = CalibrationConfig(target="tensorrt", num_images=4, heldout=2, crop=64, max_drop=5.0)
    onnx_path = tmp_path / f"{name}-int8.onnx"
    calibrate(net, onnx_path, quick)
    assert read_onnx_metadata(onnx_path)["precision"] == "int8"
    stage = check_stage(net, onnx_path, "int8")  # checked before it is compiled
    assert stage.loss_db <= stage.tolerance_db
    built = build_engine(onnx_path, tmp_path / f"{name}.engine", profile=PROFILE)
    check_sidecar(built.path, "int8", net.task)


def test_int8_engine_from_a_qat_graph(tmp_path):
    """Quantisation-aware graphs for the TensorRT target (signed int8, zero points 0,
    float biases) compile as they are."""
    pytest.importorskip("nncf", reason="QAT needs the [qat] extra (the dev install has it)")
    from jsnet_edge.calibration.qat import QATConfig, qat

    net = resolve_model("denoise-rt")
    onnx_path = tmp_path / "denoise-rt-qat.onnx"
    cfg = CalibrationConfig(target="tensorrt", num_images=4, heldout=2, crop=64, max_drop=0.5)
    report = qat(net, onnx_path, cfg, QATConfig(steps=20, batch=4, crop=32))
    assert report.qat["steps"] == 20 and report.quantized_convs > 0
    stage = check_stage(net, onnx_path, "int8")
    assert stage.loss_db <= stage.tolerance_db
    built = build_engine(onnx_path, tmp_path / "denoise-rt-qat.engine", profile=PROFILE)
    check_sidecar(built.path, "int8", net.task)


def test_the_three_build_engine_commands(tmp_path):
    """Default options, as a user would type them, on a machine without a GPU."""
    for args in (
        ("sr-x2-rt", "-o", tmp_path / "a.engine", "--fp16"),
        ("denoise-rt", "-o", tmp_path / "b.engine", "--int8"),
        ("sr-x2", "-o", tmp_path / "c.engine"),
    ):
        out = run_cli("build-engine", *args).stdout
        engine = args[2]
        side = json.loads(engine.with_name(engine.name + ".json").read_text())
        assert engine.is_file() and side["builder"] and side["compute_capabilities"]
        assert "check:" in out and "built" in out
    assert json.loads((tmp_path / "c.engine.json").read_text())["profile"]["max"] == [
        1,
        3,
        1088,
        1920,
    ]


@pytest.mark.skipif(TRT is not None and not TRT.rtx, reason="compute capabilities are RTX's")
def test_compute_capabilities_are_chosen_and_checked(tmp_path):
    onnx_path = export_onnx(resolve_model("denoise-rt"), tmp_path / "m.onnx")
    built = build_engine(
        onnx_path, tmp_path / "m.engine", profile=PROFILE, compute_capabilities=("8.6", "12.0")
    )
    assert built.sidecar["compute_capabilities"] == ["8.6", "12.0"]
    assert built.sidecar["compute_capabilities_source"] == "--compute-capability"
    with pytest.raises(OptionError, match="cannot build for compute capability 9.0"):
        build_engine(onnx_path, tmp_path / "x.engine", compute_capabilities=("9.0",))
    with pytest.raises(OptionError, match="written like 8.6"):
        parse_compute_capabilities("sm86")
    proc = run_cli(
        "build-engine", "denoise-rt", "-o", tmp_path / "y.engine", "--workspace", "0", check=False
    )
    assert proc.returncode == 1 and "--workspace must be positive" in proc.stderr


def test_an_engine_without_a_gpu_refuses_in_one_line(tmp_path):
    build_engine_for("denoise-rt", tmp_path / "m.engine", EngineConfig(profile=PROFILE))
    photo = sample_images()[0]
    proc = run_cli(
        "image",
        photo,
        "-o",
        tmp_path / "o.png",
        "--model",
        tmp_path / "m.engine",
        "--device",
        "cuda",
        check=False,
        cwd=None,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "no NVIDIA GPU is usable here" in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "o.png").exists()


def test_bench_lists_engines_built_but_not_run(tmp_path):
    out = run_cli("bench", "sr-x2-rt", "--input-size", "64x48", "--repeats", "1").stdout
    rows = [line for line in out.splitlines() if line.startswith("tensorrt")]
    assert len(rows) == 2 and all("not run: no GPU here" in r and "built (" in r for r in rows)
