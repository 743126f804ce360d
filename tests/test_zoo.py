"""Every bundled model loads, has a card, and restores a photograph better than its input."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from conftest import run_cli
from jsnet_edge.degradations import add_gaussian_noise, bicubic_downscale, imresize, jpeg_compress
from jsnet_edge.metrics import psnr
from jsnet_edge.restorer import Restorer
from jsnet_edge.zoo import DEFAULT_FOR_TASK, ZOO


def test_task_defaults_point_at_zoo_models_of_that_task():
    assert "denoise" in DEFAULT_FOR_TASK
    for task, name in DEFAULT_FOR_TASK.items():
        assert ZOO[name].task == task


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_model_restores_a_photograph(name):
    entry = ZOO[name]
    assert entry.path.stat().st_size <= 3_000_000
    card = entry.card()
    for word in ("task", "data", "steps", "machine", "Command"):
        assert word in card
    r = Restorer.from_pretrained(name, backend="torch", color_order="rgb")
    assert r.task == entry.task
    clean = data.coffee()[100:228, 200:328]
    if r.colors == 1:
        clean = data.camera()[200:328, 200:328]
    if entry.task == "denoise":
        noisy = add_gaussian_noise(clean, 25, seed=1)
        out = r(noisy / 255.0) * 255.0
        assert psnr(out, clean, mode="rgb") > psnr(np.clip(noisy, 0, 255), clean, mode="rgb") + 3
    elif entry.task == "jpeg":
        jpg = jpeg_compress(clean, 10)
        assert psnr(r(jpg), clean, mode="rgb") > psnr(jpg, clean, mode="rgb") + 0.5
    else:
        s = r.scale
        lr = bicubic_downscale(clean, s)
        assert psnr(r(lr), clean, shave=s) > psnr(imresize(lr, s), clean, shave=s) + 0.5


def test_models_command_lists_cards():
    out = run_cli("models").stdout
    assert all(name in out for name in ZOO)
    assert "Command" in run_cli("models", "denoise").stdout


INT8 = [name for name, e in ZOO.items() if e.int8_path.is_file()]


def test_int8_files_ship_for_the_cpu():
    assert INT8, "at least one zoo model ships a calibrated INT8 file"


@pytest.mark.parametrize("name", INT8)
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_int8_loses_at_most_0_1_db_on_photographs(name, backend):
    """The INT8 parity test of every backend that runs INT8, on a photograph the
    calibration never calibrated on (it used the astronaut, chelsea and coffee photographs
    shipped in the package)."""
    from jsnet_edge.runtime.capabilities import has_module

    if backend == "openvino" and not has_module("openvino"):
        pytest.skip("openvino is not installed (pip install 'jsnet-edge[openvino]')")
    entry = ZOO[name]
    ref = Restorer.from_pretrained(name, backend="torch", color_order="rgb")
    q = Restorer.from_pretrained(name, backend=backend, precision="int8", color_order="rgb")
    assert q.backend.precision == "int8" and q.task == entry.task
    losses = []
    rocket = data.rocket()
    for img in (rocket[40:296, 60:316], rocket[100:356, 300:556]):
        clean = img if ref.colors == 3 else img.mean(2).astype(np.uint8)
        s = ref.scale
        if entry.task == "denoise":
            x = add_gaussian_noise(clean, 25, seed=3) / 255.0
            a, b = ref(x) * 255.0, q(x) * 255.0
        elif entry.task == "jpeg":
            x = jpeg_compress(clean, 20)
            a, b = ref(x), q(x)
        else:
            x = bicubic_downscale(clean, s)
            clean = clean[: x.shape[0] * s, : x.shape[1] * s]
            a, b = ref(x), q(x)
        mode = "rgb" if ref.colors == 3 and s == 1 else "y"
        shave = s if s > 1 else 0
        losses.append(
            psnr(a, clean, shave=shave, mode=mode) - psnr(b, clean, shave=shave, mode=mode)
        )
    assert np.mean(losses) <= 0.1


@pytest.mark.parametrize("name", [n for n, e in ZOO.items() if e.onnx_path.is_file()])
def test_shipped_graphs_are_their_model_files(name):
    """The real-time models ship their exported ONNX (video starts without torch): it must
    be the export of the model file beside it, within the exporter's own tolerance."""
    from jsnet_edge.export.verify import verify_onnx
    from jsnet_edge.models import load_model

    assert verify_onnx(load_model(ZOO[name].path), ZOO[name].onnx_path) <= 1e-3


def test_video_takes_the_real_time_model_for_the_frame_size():
    """denoise-rt below 720p (real time there, more detail), denoise-hd (0.6 its time a
    frame) from 720p on; an unknown size (a camera before its first frame) takes the
    smaller frames' model."""
    from jsnet_edge.zoo import default_model_for

    assert default_model_for("denoise", video=True, size=(640, 360)) == "denoise-rt"
    assert default_model_for("denoise", video=True, size=(1280, 720)) == "denoise-hd"
    assert default_model_for("denoise", video=True, size=(1920, 1080)) == "denoise-hd"
    assert default_model_for("denoise", video=True) == "denoise-rt"
    assert default_model_for("denoise") == "denoise"  # images: the paper-size model
