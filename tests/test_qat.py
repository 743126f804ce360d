"""Quantisation-aware fine-tuning end to end on a tiny network: NNCF fake quantisers ->
Q/DQ ONNX -> onnxruntime and OpenVINO (and TensorRT for RTX, where installed), a bounded
loss, and a run stopped by a real SIGINT that `--resume` continues."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import onnx
import pytest
import torch

from conftest import default_sigint, run_cli
from jsnet_edge.calibration.fakequant import RANGES
from jsnet_edge.calibration.qat import QATConfig, checkpoint_path, qat
from jsnet_edge.calibration.qdq import keep_float
from jsnet_edge.calibration.quantize import CalibrationConfig
from jsnet_edge.errors import OptionError
from jsnet_edge.export.graph import read_onnx_metadata
from jsnet_edge.export.verify import check_stage
from jsnet_edge.models import Genotype, JSNet, save_model
from jsnet_edge.restorer import Restorer
from jsnet_edge.runtime.capabilities import has_module

pytest.importorskip("nncf", reason="QAT needs the [qat] extra (NNCF); the dev install has it")

TINY = Genotype.from_string("C8-L2-N1:srb:cea")
QUICK = QATConfig(steps=12, batch=2, crop=32, checkpoint_every=6, lr=1e-4, loss="db")


@pytest.fixture(scope="module")
def tiny_denoiser():
    torch.manual_seed(0)
    net = JSNet(TINY, task="denoise")
    with torch.no_grad():  # a non-trivial residual, so quantisation has something to cost
        net.tail[-1].weight.normal_(0, 0.02)
    return net.eval()


def _zero_points(proto) -> list[np.ndarray]:
    consts = {
        n.output[0]: onnx.numpy_helper.to_array(n.attribute[0].t)
        for n in proto.graph.node
        if n.op_type == "Constant" and n.attribute and n.attribute[0].t.dims is not None
    }
    consts.update({i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer})
    return [
        consts[n.input[2]]
        for n in proto.graph.node
        if n.op_type == "QuantizeLinear" and len(n.input) > 2 and n.input[2] in consts
    ]


@pytest.mark.parametrize("target", ["cpu", "tensorrt"])
def test_qat_writes_a_qdq_graph_the_cpu_runtimes_run(tiny_denoiser, tmp_path, target):
    out = tmp_path / f"qat_{target}.onnx"
    cfg = CalibrationConfig(num_images=4, heldout=2, crop=48, max_drop=10.0, target=target)
    report = qat(tiny_denoiser, out, cfg, QUICK)
    proto = onnx.load(str(out))
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    assert not any("FakeQuantize" in o for o in ops)  # standard ONNX, not OpenVINO's op
    meta = read_onnx_metadata(out)
    rep = json.loads(meta["calibration"])
    assert meta["precision"] == "int8" and rep["qat"]["steps"] == QUICK.steps
    assert rep["qat"]["ptq"]["mean"] == pytest.approx(report.qat["ptq"]["mean"])
    # Both range starts were measured on the held-out photographs; it began at the better.
    starts = rep["qat"]["starts"]
    assert set(starts) == set(RANGES) and rep["qat"]["ranges"] == min(starts, key=starts.get)
    assert rep["method"] == f"qat ({rep['qat']['ranges']} start)"
    # Every block in int8 (NNCF leaves only the 1x1 convolutions of the channel
    # attentions, on pooled vectors, in float: no work to save there).
    assert report.kept_float == [] and report.total_convs / 2 < report.quantized_convs
    assert not checkpoint_path(out).exists()  # a finished run leaves no checkpoint
    zps = _zero_points(proto)
    assert zps and all(z.dtype == np.int8 for z in zps if target == "tensorrt")
    if target == "tensorrt":  # TensorRT takes symmetric int8 only: every zero point is 0
        assert all(not np.any(z) for z in zps)
    # The loss is bounded on a photograph (onnxruntime's kernels against torch fp32) ...
    stage = check_stage(tiny_denoiser, out, "int8")
    assert stage.loss_db <= 1.0
    # ... and OpenVINO runs the same file to within a few quantisation steps.
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 48, 64)).astype(np.float32)
    ort = Restorer(out, backend="onnxruntime")
    ref = ort.backend(x)
    if has_module("openvino"):
        ov = Restorer(out, backend="openvino")
        assert ov.backend.precision == "int8"
        assert np.abs(ov.backend(x) - ref).mean() < 2.0


def test_keep_float_bypasses_the_pairs_of_float_blocks(tiny_denoiser, tmp_path):
    """A --max-drop that QAT cannot meet runs the block search on the fine-tuned graph; the
    file written is never worse than the whole int8 network."""
    out = tmp_path / "q.onnx"
    cfg = CalibrationConfig(num_images=4, heldout=2, crop=48, max_drop=0.0)
    # --scope all: the tiny network in `convs` int8 loses nothing, leaving no search to run
    report = qat(tiny_denoiser, out, cfg, dataclasses.replace(QUICK, scope="all"))
    assert len(report.search) > 2 and report.shortfall()
    assert report.held <= report.naive["held"] + 1e-9
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    mixed = keep_float(proto, ["cells.0"])
    n_q = sum(n.op_type == "QuantizeLinear" for n in proto.graph.node)
    m_q = sum(n.op_type == "QuantizeLinear" for n in mixed.graph.node)
    assert 0 < m_q < n_q
    onnx.checker.check_model(mixed)
    producer = {o: n.op_type for n in mixed.graph.node for o in n.output}
    convs = [n for n in mixed.graph.node if n.op_type == "Conv"]
    int8 = [c.name for c in convs if producer.get(c.input[1]) == "DequantizeLinear"]
    assert int8 and all(c.startswith("/cells.0/") for c in int8)


@pytest.mark.parametrize("scope", ["convs", "body"])
def test_scopes_leave_the_image_ends_in_float(tiny_denoiser, tmp_path, scope):
    """`calibrate --qat --scope` through the CLI: the head (it reads the image), the tail
    and the output sum stay in float, every convolution between them is int8 (for
    `convs`, nothing else is: no add or concatenation reads a dequantised tensor), and
    onnxruntime runs the file within a bounded loss."""
    model = tmp_path / "tiny.safetensors"
    save_model(tiny_denoiser, model)
    out = tmp_path / f"{scope}.onnx"
    run_cli(
        "calibrate", model, "-o", out, "--qat", "--scope", scope, "--steps", "12",
        "--num-images", "4", "--heldout", "2", "--max-drop", "10",
    )  # fmt: skip
    proto = onnx.load(str(out))
    producer = {o: n.op_type for n in proto.graph.node for o in n.output}

    def reads_int8(n, i: int) -> bool:
        return producer.get(n.input[i]) == "DequantizeLinear"

    convs = {n.name: reads_int8(n, 1) for n in proto.graph.node if n.op_type == "Conv"}
    ends = [n for n in convs if n.startswith(("/head/", "/tail"))]
    body = [n for n in convs if n.startswith("/cells.")]
    assert ends and not any(convs[n] for n in ends)
    assert body and all(convs[n] for n in body)
    last = next(n for n in proto.graph.node if proto.graph.output[0].name in n.output)
    assert last.op_type == "Add" and not reads_int8(last, 0) and not reads_int8(last, 1)
    others = [
        n for n in proto.graph.node if n.op_type in ("Add", "Mul", "Concat")
        and any(reads_int8(n, i) for i in range(len(n.input)))
    ]  # fmt: skip
    assert (not others) if scope == "convs" else others
    rep = json.loads(read_onnx_metadata(out)["calibration"])
    assert rep["qat"]["scope"] == scope
    assert check_stage(tiny_denoiser, out, "int8").loss_db <= 1.0


def test_qat_stopped_by_sigint_resumes(tiny_denoiser, tmp_path):
    """A real Ctrl-C mid-run leaves a checkpoint; a plain re-run refuses in one line;
    --resume continues from the checkpoint's step and finishes."""
    model = tmp_path / "tiny.safetensors"
    save_model(tiny_denoiser, model)
    out = tmp_path / "q.onnx"
    args = [model, "-o", out, "--qat", "--steps", "60", "--checkpoint-every", "5"]
    args += ["--num-images", "4", "--heldout", "2"]
    args += ["--max-drop", "10"]  # the block search after it is tested above
    proc = subprocess.Popen(
        [sys.executable, "-m", "jsnet_edge", "calibrate", *map(str, args)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        preexec_fn=default_sigint,
    )
    ckpt = checkpoint_path(out)
    deadline = time.monotonic() + 240
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ckpt.exists(), "no checkpoint appeared"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume continues it" in err and not out.exists()
    again = run_cli("calibrate", *args, check=False)
    assert again.returncode == 1 and "--resume" in again.stderr.strip().splitlines()[-1]
    done = run_cli("calibrate", *args, "--resume")
    assert "resuming QAT at step" in done.stderr
    step = int(done.stderr.split("resuming QAT at step ")[1].split("/")[0])
    assert 0 < step < 60
    assert out.exists() and not ckpt.exists()
    assert json.loads(read_onnx_metadata(out)["calibration"])["qat"]["steps"] == 60


def test_qat_options_are_checked(tmp_path):
    with pytest.raises(OptionError, match="teacher"):
        QATConfig(teacher="nobody")
    with pytest.raises(OptionError, match="crops"):
        QATConfig(crop=4)
    with pytest.raises(OptionError, match="--loss"):
        QATConfig(loss="l7")
    with pytest.raises(OptionError, match="--scope must be one of convs, body, all"):
        QATConfig(scope="everything")
    with pytest.raises(OptionError, match="drop --method"):
        qat(JSNet(TINY, task="denoise"), tmp_path / "m.onnx", CalibrationConfig(method="minmax"))
    out = tmp_path / "x.onnx"
    bad = run_cli("calibrate", "denoise-rt", "-o", out, "--scope", "body", check=False)
    assert (
        bad.returncode == 1
        and not out.exists()
        and "add --qat" in bad.stderr.strip().splitlines()[-1]
    )
