"""INT8 calibration: Q/DQ ONNX that the CPU runtimes run, with a measured sensitivity pass."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from conftest import run_cli
from jsnet_edge.calibration.estimate import LossEstimate
from jsnet_edge.calibration.quantize import CalibrationConfig, calibrate, group_of
from jsnet_edge.errors import OptionError
from jsnet_edge.export.graph import read_onnx_metadata
from jsnet_edge.models import Genotype, JSNet, save_model
from jsnet_edge.restorer import Restorer
from jsnet_edge.runtime.capabilities import has_module

TINY = Genotype.from_string("C8-L2-N1:srb:cea")


@pytest.fixture(scope="module")
def tiny_denoiser():
    torch.manual_seed(0)
    net = JSNet(TINY, task="denoise")
    with torch.no_grad():  # a non-trivial residual, so quantisation has something to cost
        net.tail[-1].weight.normal_(0, 0.02)
    return net.eval()


def test_group_names_from_node_paths():
    assert group_of("/cells.3/ops.2/op1/op1.0/Conv", 0) == "cells.3"
    assert group_of("/cells.3/ops.2/op1/op1.0/Conv", 1) == "cells.3.ops.2"
    assert group_of("/csfm/Add_2", 1) == "csfm.Add_2"
    assert group_of("/Add", 0) == group_of("/Concat_1", 1) == "network"


@pytest.mark.parametrize("target", ["cpu", "tensorrt"])
def test_calibrated_file_runs_and_reports(tiny_denoiser, tmp_path, target):
    out = tmp_path / f"int8_{target}.onnx"
    cfg = CalibrationConfig(
        num_images=4, heldout=2, crop=48, target=target, max_drop=10.0, method="minmax"
    )
    report = calibrate(tiny_denoiser, out, cfg)
    proto = onnx.load(str(out))
    ops = [n.op_type for n in proto.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    meta = read_onnx_metadata(out)
    assert meta["precision"] == "int8" and json.loads(meta["calibration"])["target"] == target
    assert report.quantized_convs == report.total_convs > 0 and report.drop <= 10.0
    zero_points = [i for i in proto.graph.initializer if i.name.endswith("_zero_point")]
    if target == "tensorrt":  # TensorRT accepts only symmetric int8: zero points are 0
        assert all(
            i.data_type == onnx.TensorProto.INT8 and not np.any(onnx.numpy_helper.to_array(i))
            for i in zero_points
        )
    else:
        assert any(i.data_type == onnx.TensorProto.UINT8 for i in zero_points)
    backends = ["onnxruntime"] + (["openvino"] if has_module("openvino") else [])
    photo = (np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)
    for b in backends:
        r = Restorer(out, backend=b, color_order="rgb")
        assert r.backend.precision == "int8" and r(photo).shape == photo.shape


def test_unshuffled_network_calibrates(tmp_path, monkeypatch):
    """Real-time networks run their body at half resolution (pixel unshuffle), which
    onnxruntime's symbolic shape inference cannot follow with dynamic sizes: calibration
    still goes through, the file runs, and no scratch file lands in the working directory."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    torch.manual_seed(0)
    net = JSNet(Genotype.from_string("C8-L1-N2-S2:skip,rb,rb:skip,skip,skip"), task="denoise")
    out = tmp_path / "rt_int8.onnx"
    cfg = CalibrationConfig(num_images=2, heldout=1, crop=48, max_drop=10.0, method="minmax")
    report = calibrate(net.eval(), out, cfg)
    assert report.quantized_convs == report.total_convs > 0
    photo = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)
    assert Restorer(out, backend="onnxruntime", color_order="rgb")(photo).shape == photo.shape
    assert list(cwd.iterdir()) == []


def test_the_promise_follows_where_the_photographs_come_from(tiny_denoiser, tmp_path):
    """Generic photographs (no --data) hold --max-drop to their worst image; the user's
    own folder to the 90% bound of the mean (calibration.estimate explains why)."""
    est = LossEstimate({"a": 0.01, "b": 0.02, "c": 0.12}, "worst")
    assert est.held == est.worst == 0.12 and est.bound < 0.12
    assert LossEstimate(est.per_image).held == est.bound
    with pytest.raises(ValueError, match="rule"):
        LossEstimate({"a": 0.0}, "median")
    cfg = CalibrationConfig(num_images=2, heldout=3, crop=48, max_drop=10.0, method="minmax")
    generic = calibrate(tiny_denoiser, tmp_path / "generic.onnx", cfg)
    assert generic.estimate["rule"] == "worst" and "worst" in generic.held_to
    assert generic.held == pytest.approx(max(generic.estimate["per_image"].values()))
    folder = tmp_path / "photos"
    folder.mkdir()
    from skimage import data, io

    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        io.imsave(folder / f"{name}.png", getattr(data, name)(), check_contrast=False)
    cfg = CalibrationConfig(
        data=folder, num_images=2, heldout=2, crop=48, max_drop=10.0, method="minmax"
    )
    own = calibrate(tiny_denoiser, tmp_path / "own.onnx", cfg)
    assert own.estimate["rule"] == "bound" and own.held == pytest.approx(own.bound)
    assert "worst" not in own.held_to and "generic" not in " ".join(own.warnings)
    assert "generic" in " ".join(generic.warnings)


def test_sensitivity_pass_keeps_blocks_in_float(tiny_denoiser, tmp_path):
    cfg = CalibrationConfig(num_images=4, heldout=2, crop=48, max_drop=0.0, method="minmax")
    report = calibrate(tiny_denoiser, tmp_path / "strict.onnx", cfg)
    tried = [s["float"] for s in report.search]
    assert tried[0] == "nothing" and len(tried) > 3  # it measured the blocks
    assert report.drop <= report.naive_drop + 1e-9
    if report.kept_float:
        assert report.quantized_convs < report.total_convs


def test_calibration_cli_and_bad_folders(tmp_path):
    m = save_model(JSNet(TINY, task="jpeg"), tmp_path / "m.safetensors")
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_cli("calibrate", m, "--data", empty, "-o", tmp_path / "q.onnx", check=False)
    assert proc.returncode == 1 and "holds no images" in proc.stderr
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "broken.png").write_bytes(b"\x89PNG not really")
    proc = run_cli("calibrate", m, "--data", junk, "-o", tmp_path / "q.onnx", check=False)
    assert proc.returncode == 1 and "no usable calibration image" in proc.stderr
    with pytest.raises(OptionError, match="--method"):
        CalibrationConfig(method="kl")
    proc = run_cli(
        "calibrate", m, "-o", tmp_path / "q.onnx", "--num-images", "2", "--max-drop", "5"
    )
    assert "int8 (cpu, percentile)" in proc.stdout and (tmp_path / "q.onnx").is_file()
    assert json.loads((tmp_path / "q.calibration.json").read_text())["method"] == "percentile"
