"""Video in its own format: 4:2:0 frames go from the decoder into an I420 graph (the
colour conversion inside it) and out to the encoder, with no RGB round trip outside the
network; checked on the module, on the exported graph in both CPU runtimes, and through
the real `jsnet-edge video` command (frame count, timestamps, sizes, what the stats say)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data

from conftest import run_cli
from jsnet_edge.errors import OptionError
from jsnet_edge.models import Genotype, JSNet, save_model
from jsnet_edge.models.frame_layout import FrameLayout
from jsnet_edge.models.frames import OFFSET, I420Frames, yuv_matrix
from jsnet_edge.restorer import Restorer

TINY = Genotype.from_string("C8-L1-N2-S2:skip,rb,rb:skip,skip,skip")  # denoise-rt's shape
TINY_S4 = Genotype.from_string("C8-L1-N2-S4:skip,rb,rb:skip,skip,skip")


def i420(rgb: np.ndarray) -> np.ndarray:
    """FFmpeg's 4:2:0 of an RGB image (BT.601, limited range), as decoders give it."""
    f = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    return f.reformat(format="yuv420p").to_ndarray()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return data.astronaut()[:192, :256]  # RGB


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    dn = JSNet(TINY, task="denoise")
    with torch.no_grad():  # not the identity: a network that changes every sample
        dn.tail[0].weight.normal_(0, 0.02)
    return {
        "dn": save_model(dn, d / "dn.safetensors"),
        "id": save_model(JSNet(TINY, task="denoise"), d / "id.safetensors"),
        "sr": save_model(JSNet(TINY, task="sr-x2"), d / "sr.safetensors"),
    }


@pytest.mark.parametrize("genotype", [TINY.to_string(), TINY_S4.to_string()])
def test_the_i420_network_is_the_rgb_network_on_4_2_0_frames(genotype):
    """Exactly the RGB network on the frame's RGB (chroma repeated over 2x2 blocks), its
    correction taken back to YUV with chroma averaged over 2x2 blocks: the colour
    matrices fold into the head and tail; nothing else changes."""
    torch.manual_seed(0)
    net = JSNet(Genotype.from_string(genotype), task="denoise").double().eval()
    with torch.no_grad():
        net.tail[0].weight.normal_(0, 0.05)
        net.tail[0].bias.normal_(0, 1)
    h, w = 96, 128
    x = torch.rand(1, 1, 3 * h // 2, w, dtype=torch.float64) * 200 + 20
    y, uv = x[:, :, :h], x[:, :, h:].reshape(1, 2, h // 2, w // 2)
    m = yuv_matrix("bt601")
    off = torch.tensor(OFFSET, dtype=torch.float64).view(1, 3, 1, 1)
    full = torch.cat([y, F.interpolate(uv, scale_factor=2, mode="nearest")], 1)
    rgb = F.conv2d(full - off, torch.linalg.inv(m).view(3, 3, 1, 1))
    with torch.no_grad():
        d = F.conv2d(net(rgb) - rgb, m.view(3, 3, 1, 1))
        want = torch.cat(
            [y + d[:, :1], (uv + F.avg_pool2d(d[:, 1:], 2)).reshape(1, 1, h // 2, w)], 2
        )
        got = I420Frames(net, FrameLayout(w, h)).double()(x)
    diff = (got - want.clamp(0, 255).round()).abs()  # (weights stored in float32: a sample
    assert diff.max() <= 1 and (diff > 0).double().mean() < 1e-3  # may round the other way)
    # the I420 graph reads 3/2 channels per body pixel where the RGB one reads 3 s^2
    assert I420Frames(net, FrameLayout(w, h)).head.in_channels * 2 == net.head.in_channels
    # an untrained x1 network is the identity: every sample comes back exactly
    ident = JSNet(Genotype.from_string(genotype), task="denoise").eval()
    with torch.no_grad():
        assert torch.equal(I420Frames(ident, FrameLayout(w, h))(x.float()), x.float().round())
    with pytest.raises(OptionError, match="colour x1"):
        I420Frames(JSNet(TINY, task="sr-x2"), FrameLayout(w, h))


@pytest.mark.parametrize("backend", ["openvino", "onnxruntime"])
def test_the_exported_i420_graph_matches_the_rgb_network(backend, models, photo):
    r = Restorer(models["dn"], backend=backend, precision="fp32", color_order="rgb")
    frames = r.frames_backend(FrameLayout(256, 192))
    assert frames is not None and frames.name == backend
    noisy = np.clip(photo + np.random.default_rng(0).normal(0, 15, photo.shape), 0, 255)
    given = i420(noisy.astype(np.uint8))
    got = frames(given.astype(np.float32)[None, None])[0, 0]
    assert got.shape == given.shape and np.all(got == np.round(got))  # 8-bit samples
    # the same network the RGB way, compared where the two agree by construction: luma
    rgb = av.VideoFrame.from_ndarray(given, format="yuv420p").to_ndarray(format="rgb24")
    ref = i420(r(rgb))
    assert np.abs(got[:192] - ref[:192].astype(np.float32)).mean() < 2.0
    assert not np.array_equal(got, given)  # it did restore
    # any even size the body takes, also where a chroma plane ends mid-row of FFmpeg's
    # array (H/2 odd)
    odd_rows = r.frames_backend(FrameLayout(130, 98))
    small = i420(np.ascontiguousarray(photo[:98, :130]))
    assert np.array_equal(odd_rows(small.astype(np.float32)[None, None])[0, 0].shape, small.shape)
    # the torch backend runs no exported graph: the RGB path (None)
    assert Restorer(models["dn"], backend="torch").frames_backend(FrameLayout(256, 192)) is None


def write_vfr_clip(path: Path, photo: np.ndarray, pts_ms: list[int]) -> None:
    rng = np.random.default_rng(1)
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25, options={"crf": "16"})
        v.width, v.height, v.pix_fmt = photo.shape[1], photo.shape[0], "yuv420p"
        v.codec_context.time_base = Fraction(1, 1000)
        for t in pts_ms:
            noisy = np.clip(photo + rng.normal(0, 10, photo.shape), 0, 255).astype(np.uint8)
            f = av.VideoFrame.from_ndarray(noisy, format="rgb24")
            f.pts, f.time_base = t, Fraction(1, 1000)
            c.mux(v.encode(f))
        c.mux(v.encode(None))


def read_back(path: Path) -> tuple[list[int], list[np.ndarray], str, tuple[int, int]]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = list(c.decode(video=0))
        return (
            [round(float(f.pts * f.time_base) * 1000) for f in frames],
            [f.to_ndarray(format="yuv420p") for f in frames],
            v.codec_context.pix_fmt,
            (v.width, v.height),
        )


def test_video_goes_4_2_0_in_and_out_keeping_frames_and_timestamps(models, photo, tmp_path):
    src = tmp_path / "in.mkv"
    pts = [0, 40, 80, 100, 120, 200, 240, 280, 300, 400]  # ms, irregular: variable rate
    write_vfr_clip(src, photo, pts)
    runs = {
        "yuv": [],  # the default: 4:2:0 out
        "rgb": ["--chroma", "444"],  # 4:4:4 out: the RGB path
    }
    got = {}
    for name, extra in runs.items():
        out, stats = tmp_path / f"{name}.mkv", tmp_path / f"{name}.json"
        cmd = ["video", src, "-o", out, "--model", models["id"], "--backend", "openvino"]
        run_cli(*cmd, "--stats", stats, "--no-progress", "--crf", "0", *extra)
        got[name] = (json.loads(stats.read_text()), *read_back(out))
    s, times, frames, pix_fmt, size = got["yuv"]
    assert s["frame_format"] == "yuv420p" and pix_fmt == "yuv420p" and size == (256, 192)
    assert times == pts and s["frames"] == len(pts)  # every frame, at its own time
    assert got["rgb"][0]["frame_format"] == "bgr24" and got["rgb"][3] == "yuv444p"
    _, given, _, _ = read_back(src)
    # An identity network and a lossless encoder (--crf 0): the 4:2:0 path hands the
    # encoder the decoded samples themselves; the RGB path converts them both ways.
    assert all(np.array_equal(a, b) for a, b in zip(frames, given, strict=True))
    assert not any(np.array_equal(a, b) for a, b in zip(got["rgb"][2], given, strict=True))


def test_super_resolution_and_previews_take_the_rgb_path(models, photo, tmp_path):
    src = tmp_path / "in.mkv"
    write_vfr_clip(src, photo, [0, 40, 80, 120])
    out, stats = tmp_path / "x2.mp4", tmp_path / "x2.json"
    cmd = ["video", src, "--model", models["sr"], "--backend", "onnxruntime", "--no-progress"]
    run_cli(*cmd, "-o", out, "--stats", stats)
    s = json.loads(stats.read_text())
    times, frames, pix_fmt, size = read_back(out)
    assert s["frame_format"] == "bgr24" and size == (512, 384) and len(frames) == 4
    assert pix_fmt == "yuv420p" and times == [0, 40, 80, 120]
    # a side-by-side preview needs RGB frames: the RGB path, said in the stats
    out2, stats2 = tmp_path / "pv.mp4", tmp_path / "pv.json"
    cmd = ["video", src, "--model", models["dn"], "--backend", "openvino", "--no-progress"]
    run_cli(*cmd, "-o", out2, "--stats", stats2, "--preview", tmp_path / "side.mp4")
    assert json.loads(stats2.read_text())["frame_format"] == "bgr24"
    assert read_back(out2)[3] == (256, 192)
