"""Restorer: dtypes, layouts, colour orders, alpha, tiling, small images, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jsnet_edge.errors import ImageError, ModelError, OptionError
from jsnet_edge.metrics import psnr
from jsnet_edge.models import Genotype, JSNet
from jsnet_edge.restorer import Restorer

TINY = Genotype(ops=("srb",), attentions=("esab",), width=8, cells=1, nodes=1)


@pytest.fixture(scope="module")
def tiny_sr():
    torch.manual_seed(0)
    return JSNet(TINY, task="sr-x2", colors=3).eval()


@pytest.fixture(scope="module")
def tiny_gray_denoiser():
    torch.manual_seed(0)
    return JSNet(TINY, task="denoise", colors=1).eval()


def test_tiled_matches_untiled_on_a_photograph(official_x2, photo):
    img = photo[:200, :260]
    whole = Restorer(official_x2, backend="torch", tile=1024, color_order="rgb")(
        img.astype(np.float32) / 255
    )
    tiled = Restorer(official_x2, backend="torch", tile=96, tile_overlap=24, color_order="rgb")(
        img.astype(np.float32) / 255
    )
    assert whole.shape == tiled.shape == (400, 520, 3)
    assert psnr(whole * 255, tiled * 255, mode="rgb") >= 50.0


def test_bgr_and_rgb_orders_agree(tiny_sr, photo):
    img = photo[:48, :40]
    rgb = Restorer(tiny_sr, backend="torch", color_order="rgb")(img)
    bgr = Restorer(tiny_sr, backend="torch", color_order="bgr")(
        np.ascontiguousarray(img[:, :, ::-1])
    )
    assert np.array_equal(rgb, bgr[:, :, ::-1])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_dtype_and_layout_are_kept(tiny_sr, photo, dtype):
    img8 = photo[:40, :36]
    img = {
        np.uint8: img8,
        np.uint16: img8.astype(np.uint16) * 257,
        np.float32: img8.astype(np.float32) / 255,
        np.float64: img8.astype(np.float64) / 255,
    }[dtype]
    r = Restorer(tiny_sr, backend="torch", color_order="rgb")
    out = r(img)
    assert out.dtype == dtype and out.shape == (80, 72, 3)
    ref = r(img8).astype(np.float64)
    scale = {np.uint8: 1, np.uint16: 257, np.float32: 1 / 255, np.float64: 1 / 255}[dtype]
    assert np.abs(out.astype(np.float64) / scale - ref).max() <= 1.0


def test_gray_and_alpha(tiny_sr, gray_photo, photo):
    r = Restorer(tiny_sr, backend="torch")
    g = gray_photo[:30, :40]
    assert r(g).shape == (60, 80)
    assert r(g[:, :, None]).shape == (60, 80, 1)
    rgba = np.dstack([photo[:30, :40], np.full((30, 40), 200, np.uint8)])
    rgba[:10, :10, 3] = 0
    out = r(rgba)
    assert out.shape == (60, 80, 4)
    assert out[25:, 25:, 3].min() == 200 and out[:16, :16, 3].max() <= 5
    la = np.dstack([g, np.full_like(g, 255)])
    assert r(la).shape == (60, 80, 2)


def test_gray_model_on_colour_image(tiny_gray_denoiser, photo):
    out = Restorer(tiny_gray_denoiser, backend="torch", color_order="rgb")(photo[:32, :32])
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8


def test_small_images_are_padded_not_refused(tiny_sr):
    r = Restorer(tiny_sr, backend="torch")
    for h, w in [(1, 1), (5, 3), (16, 40), (3, 90)]:
        assert r(np.full((h, w, 3), 120, np.uint8)).shape == (2 * h, 2 * w, 3)


def test_bad_images_are_refused_clearly(tiny_sr):
    r = Restorer(tiny_sr, backend="torch")
    with pytest.raises(ImageError, match="shape"):
        r(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ImageError, match="empty"):
        r(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(ImageError, match="pixel type"):
        r(np.zeros((4, 4), np.int32))
    with pytest.raises(ImageError, match="NaN"):
        r(np.full((4, 4), np.nan, np.float32))
    with pytest.raises(ImageError, match="numpy array"):
        r([[1, 2], [3, 4]])


def test_bad_options_are_refused_clearly(tiny_sr):
    with pytest.raises(OptionError, match="tile size"):
        Restorer(tiny_sr, backend="torch", tile=4)
    with pytest.raises(OptionError, match="overlap"):
        Restorer(tiny_sr, backend="torch", tile=64, tile_overlap=40)
    with pytest.raises(OptionError, match="backend"):
        Restorer(tiny_sr, backend="tensorflow")
    with pytest.raises(OptionError, match="color_order"):
        Restorer(tiny_sr, backend="torch", color_order="yuv")
    with pytest.raises(OptionError, match="fp16 needs"):
        Restorer(tiny_sr, backend="torch", precision="fp16")
    with pytest.raises(ModelError, match="no model named"):
        Restorer("no-such-model")
    with pytest.raises(ModelError, match="does not exist"):
        Restorer("models/missing.safetensors")


def test_bf16_on_cpu_is_close(tiny_sr, photo):
    img = photo[:32, :32]
    a = Restorer(tiny_sr, backend="torch")(img).astype(np.float64)
    b = Restorer(tiny_sr, backend="torch", precision="bf16")(img).astype(np.float64)
    assert psnr(a, b, mode="rgb") > 30


def test_openvino_opens_a_network_whose_smallest_input_is_above_32(photo):
    """ESAB behind a 4x unshuffle needs 60 pixels: the backend's compile check at open and
    small images both respect that (the 1280x720 profile once failed on it)."""
    g = Genotype(ops=("srb",), attentions=("esab",), width=8, cells=1, nodes=1, unshuffle=4)
    torch.manual_seed(0)
    net = JSNet(g, task="denoise", colors=3).eval()
    assert net.min_size == 60
    r = Restorer(net, backend="openvino", precision="fp32")
    small = r(photo[:20, :36])
    assert small.shape == (20, 36, 3)
    out = r(photo[:72, :96])
    ref = Restorer(net, backend="torch")(photo[:72, :96])
    assert psnr(out.astype(np.float64), ref.astype(np.float64), mode="rgb") > 45


def test_the_default_is_the_fastest_backend_and_precision(tiny_sr, photo):
    """`Restorer(model)` runs what the command line runs (backend and precision "auto"),
    and says so; torch fp32, the reference, is one argument away."""
    from jsnet_edge.runtime.capabilities import has_module
    from jsnet_edge.runtime.openvino_backend import runs_bf16

    img = photo[:48, :40]
    fast = Restorer(tiny_sr, color_order="rgb")
    ref = Restorer(tiny_sr, backend="torch", color_order="rgb")
    assert fast.backend.name in (("openvino",) if has_module("openvino") else ("onnxruntime",))
    assert fast.backend.name != "openvino" or fast.backend.precision == (
        "bf16" if runs_bf16() else "fp32"
    )
    assert fast.describe().count("picked by auto") == 2
    assert (ref.backend.name, ref.backend.precision) == ("torch", "fp32")
    a, b = ref(img).astype(np.float64), fast(img).astype(np.float64)
    assert psnr(a, b, mode="rgb") > 30


def test_auto_takes_a_shipped_int8_file_only_when_measured_faster():
    """precision="auto" on a zoo model with an INT8 file held within 0.1 dB (`jpeg`) times
    the float graph against the INT8 one once, keeps the choice, and runs the winner."""
    import json

    from jsnet_edge.cache import cache_dir
    from jsnet_edge.runtime.capabilities import has_module
    from jsnet_edge.runtime.factory import AUTO_INT8_DROP, int8_within
    from jsnet_edge.zoo import ZOO

    if not has_module("openvino"):
        pytest.skip("auto picks int8 among OpenVINO runs; openvino is not installed")
    assert int8_within(ZOO["jpeg"].int8_path, AUTO_INT8_DROP)
    assert not int8_within(None, AUTO_INT8_DROP)
    r = Restorer("jpeg")
    records = list(cache_dir("auto").glob("*-or-int8.json"))
    assert len(records) == 1
    rec = json.loads(records[0].read_text())
    assert "int8" in rec["ms"] and len(rec["ms"]) == 2  # the float graph against int8
    assert r.backend.precision == rec["choice"]
    again = Restorer("jpeg")  # the choice is read back, not measured again
    assert again.backend.precision == r.backend.precision
    assert json.loads(records[0].read_text()) == rec
