"""Recurrent (video) networks: the head also reads the previous restored frame. The genotype
says so as data; a single-frame model starts one unchanged; training runs on moving clips
made from real photographs; `jsnet-edge video` feeds each restored frame to the next, in
order, and starts afresh at a scene cut, checked against the same recurrence in torch."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data

from conftest import run_cli
from jsnet_edge.degradations import Degradation
from jsnet_edge.errors import GenotypeError
from jsnet_edge.models import Genotype, JSNet, load_model, save_model
from jsnet_edge.models.fileinfo import size_problem
from jsnet_edge.models.frame_layout import FrameLayout
from jsnet_edge.models.frames import OFFSET, I420Frames, yuv_matrix
from jsnet_edge.motion import (
    SCENE_CUT,
    block_means,
    global_shift,
    shifted,
    shifted_i420,
    thumbnail,
)
from jsnet_edge.train.clips import ClipSampler
from jsnet_edge.train.trainer import init_from

SINGLE = "C8-L1-N2-S2:skip,rb,rb:skip,skip,skip"  # denoise-rt's shape
RECURRENT = SINGLE.replace("-S2:", "-S2-R:")


def test_recurrence_is_a_genotype_field():
    g = Genotype.from_string(RECURRENT)
    assert g.recurrent and g.to_string() == RECURRENT
    assert Genotype.from_json(g.to_json()) == g and g.to_dict()["recurrent"] is True
    # single-frame genotypes keep the form model files already hold
    assert "recurrent" not in Genotype.from_string(SINGLE).to_dict()
    with pytest.raises(GenotypeError, match="recurrent must be true or false"):
        Genotype.from_dict({**g.to_dict(), "recurrent": "yes"})
    assert "recurrent" in size_problem({**g.to_dict(), "recurrent": 1})  # a file's metadata


def test_a_single_frame_model_starts_a_recurrent_one_unchanged(tmp_path):
    torch.manual_seed(0)
    single = JSNet(Genotype.from_string(SINGLE), task="denoise").eval()
    with torch.no_grad():
        single.tail[0].weight.normal_(0, 0.05)
    path = save_model(single, tmp_path / "single.safetensors")
    rec = JSNet(Genotype.from_string(RECURRENT), task="denoise").eval()
    weights = [k for k in single.state_dict() if "_mean." not in k]  # all but the mean shift
    assert init_from(rec, str(path)) == len(weights)
    x, prev = torch.rand(2, 3, 40, 56) * 255, torch.rand(2, 3, 40, 56) * 255
    with torch.no_grad():
        # exactly the network it was made from, whatever the previous frame
        assert torch.allclose(rec(x, prev), single(x), atol=1e-3)
        assert torch.allclose(rec(x), single(x), atol=1e-3)
    # and it round-trips through a model file, recurrence and all
    again = load_model(save_model(rec, tmp_path / "rec.safetensors"))
    assert again.genotype.recurrent and again.head.in_channels == 2 * single.head.in_channels


def test_the_recurrent_i420_graph_is_the_rgb_network_on_both_frames():
    """As for single-frame networks (`test_frames`): with chroma repeated over 2x2 blocks,
    the I420 graph is exactly the RGB network, here on the frame and the previous one."""
    torch.manual_seed(0)
    net = JSNet(Genotype.from_string(RECURRENT), task="denoise").double().eval()
    with torch.no_grad():
        net.head.weight.normal_(0, 0.05)
        net.tail[0].weight.normal_(0, 0.05)
    h, w = 64, 96
    m = yuv_matrix("bt601")
    off = torch.tensor(OFFSET, dtype=torch.float64).view(1, 3, 1, 1)

    def rgb_of(x):
        y, uv = x[:, :, :h], x[:, :, h:].reshape(1, 2, h // 2, w // 2)
        full = torch.cat([y, F.interpolate(uv, scale_factor=2, mode="nearest")], 1)
        return y, uv, F.conv2d(full - off, torch.linalg.inv(m).view(3, 3, 1, 1))

    cur = torch.rand(1, 1, 3 * h // 2, w, dtype=torch.float64) * 200 + 20
    prev = torch.rand(1, 1, 3 * h // 2, w, dtype=torch.float64) * 200 + 20
    y, uv, rgb = rgb_of(cur)
    with torch.no_grad():
        d = F.conv2d(net(rgb, rgb_of(prev)[2]) - rgb, m.view(3, 3, 1, 1))
        want = torch.cat(
            [y + d[:, :1], (uv + F.avg_pool2d(d[:, 1:], 2)).reshape(1, 1, h // 2, w)], 2
        )
        module = I420Frames(net, FrameLayout(w, h)).double()
        assert module.shape == (1, 2, 3 * h // 2, w)
        got = module(torch.cat([cur, prev], 1))
    diff = (got - want.clamp(0, 255).round()).abs()
    assert diff.max() <= 1 and (diff > 0).double().mean() < 1e-3
    assert not torch.equal(got, module(torch.cat([cur, cur], 1)))  # it reads the previous


def test_training_clips_move_and_keep_one_degradation(photo_dir):
    deg = Degradation("denoise", sigma=(10.0, 10.0))
    sampler = ClipSampler(photo_dir, deg, 3, 48, frames=4, seed=3)
    x, y = sampler.batch_at(0, 6)
    assert x.shape == y.shape == (6, 4, 3, 48, 48) and x.dtype == np.float32
    again = sampler.batch_at(0, 6)
    assert np.array_equal(x, again[0]) and np.array_equal(y, again[1])  # reproducible
    noise = x - y
    assert np.all(np.abs(noise.std(axis=(2, 3, 4)) - 10) < 1.5)  # one sigma for every frame
    assert not np.allclose(noise[:, 0], noise[:, 1], atol=1)  # fresh noise in every frame
    moved = np.abs(np.diff(y, axis=1)).mean(axis=(2, 3, 4))
    assert (moved > 1).any() and (moved < 0.5).any()  # pans and objects, and still clips
    # camera noise: H.264 runs over the whole clip (real P-frames), uint8 as decoded
    cam = ClipSampler(photo_dir, Degradation("denoise", noise="camera"), 3, 48, frames=3)
    cx, cy = cam.batch_at(1, 4)
    assert cx.shape == (4, 3, 3, 48, 48) and np.array_equal(cx, np.round(cx))


def test_the_camera_motion_is_found_through_noise_and_undone():
    """Phase correlation on thumbnails finds a pan through heavy noise, in whole multiples
    of 2 pixels (4:2:0); shifting the previous frame by it lines it up with the next."""
    photo = cv2.resize(data.astronaut(), (1600, 1000)).astype(np.float64).mean(2)
    rng = np.random.default_rng(0)
    h, w = 360, 640
    for dx, dy in [(6, -4), (-10, 2), (0, 0), (3, 1)]:
        prev = photo[200 : 200 + h, 300 : 300 + w]
        cur = photo[200 - dy : 200 - dy + h, 300 - dx : 300 - dx + w]  # cur = prev moved
        noisy = [np.clip(a + rng.normal(0, 25, a.shape), 0, 255) for a in (prev, cur)]
        found = global_shift(thumbnail(noisy[0]), thumbnail(noisy[1]))
        assert found == (2 * round(dx / 2), 2 * round(dy / 2)), (dx, dy, found)
        if dx % 2 == 0 and dy % 2 == 0:
            assert np.array_equal(shifted(prev, *found)[16:-16, 16:-16], cur[16:-16, 16:-16])
    # a scene with no single motion (another photograph): no shift
    other = cv2.resize(data.coffee(), (w, h)).astype(np.float64).mean(2)
    assert global_shift(thumbnail(photo[:h, :w]), thumbnail(other)) == (0, 0)
    # I420: chroma moves by half as much, edges repeated
    f = np.arange(3 * 8 // 2 * 12, dtype=np.float32).reshape(12, 12)
    g = shifted_i420(f, 8, 2, -2)
    assert np.array_equal(g[:8], shifted(f[:8], 2, -2))
    u = f[8:].reshape(2, 4, 6)
    assert np.array_equal(g[8:].reshape(2, 4, 6), shifted(u, 1, -1))


def write_clip(path: Path, scenes: list[np.ndarray], per_scene: int) -> None:
    """A noisy H.264 clip: `per_scene` frames panning over each scene in turn (cuts)."""
    rng = np.random.default_rng(0)
    h, w = 96, 128
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25, options={"crf": "18"})
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        for scene in scenes:
            for k in range(per_scene):
                frame = scene[2 * k : 2 * k + h, 4 * k : 4 * k + w].astype(np.float64)
                noisy = np.clip(frame + rng.normal(0, 12, frame.shape), 0, 255).astype(np.uint8)
                c.mux(v.encode(av.VideoFrame.from_ndarray(noisy, format="rgb24")))
        c.mux(v.encode(None))


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="yuv420p") for f in c.decode(video=0)]


def test_train_on_clips_then_video_feeds_each_frame_to_the_next(photo_dir, tmp_path):
    """`train` a recurrent genotype on clips through the CLI, then `video`: each output
    frame is the network on (the frame, the previous output moved by the camera's motion),
    the first frame and the frame after a scene cut on (the frame, itself), as the same
    recurrence in torch gives."""
    out = tmp_path / "rec.safetensors"
    run_cli(
        "train", "--task", "denoise", "--genotype", RECURRENT, "--data", photo_dir,
        "--out", out, "--steps", "3", "--batch", "2", "--patch", "32", "--clip-frames", "3",
        "--sigma", "12", "--lr", "0.01", "--threads", "1",
    )  # fmt: skip
    assert "moving clips of 3 frames" in out.with_suffix(".md").read_text()
    net = load_model(out).eval()
    with torch.no_grad():  # make the previous frame matter, whatever 3 steps learnt
        net.head.weight[:, 12:].normal_(0, 0.05)
        net.tail[0].weight.normal_(0, 0.02)
    model = save_model(net, tmp_path / "m.safetensors")
    src, dst, stats = tmp_path / "in.mp4", tmp_path / "out.mp4", tmp_path / "s.json"
    write_clip(src, [data.astronaut(), data.coffee()], per_scene=4)
    cmd = ["video", src, "-o", dst, "--model", model, "--backend", "onnxruntime"]
    run_cli(*cmd, "--precision", "fp32", "--crf", "0", "--stats", stats, "--no-progress")
    s = json.loads(stats.read_text())
    assert s["frame_format"] == "yuv420p" and s["recurrent"] and s["scene_cuts"] == 1
    given, got = decoded(src), decoded(dst)
    assert len(got) == len(given) == 8
    module = I420Frames(net, FrameLayout(128, 96)).eval()
    prev, prev_luma, prev_thumb, want, moves = None, None, None, [], []
    for f in given:
        luma, thumb = block_means(f[:96]), thumbnail(f[:96])
        if prev is not None and np.abs(luma - prev_luma).mean() > SCENE_CUT:
            prev = None  # the cut, between frames 3 and 4
        x = torch.from_numpy(f.astype(np.float32))[None, None]
        if prev is not None:  # the previous output, moved by the camera's motion
            moves.append(global_shift(prev_thumb, thumb))
            prev = torch.from_numpy(shifted_i420(prev[0, 0].numpy(), 96, *moves[-1]))[None, None]
        with torch.no_grad():
            prev = module(torch.cat([x, x if prev is None else prev], 1))
        prev_luma, prev_thumb = luma, thumb
        want.append(prev[0, 0].numpy())
    assert moves == [(-4, -2)] * 6  # the view pans 4 pixels right and 2 down a frame
    for k, (a, b) in enumerate(zip(got, want, strict=True)):
        diff = np.abs(a.astype(np.float32) - b)
        assert diff.max() <= 2 and diff.mean() < 0.02, k  # ORT vs torch rounding only
    # the recurrence is real: the frame after the first differs from the frame on its own
    alone = module(torch.cat([torch.from_numpy(given[1].astype(np.float32))[None, None]] * 2, 1))
    assert np.abs(got[1] - alone[0, 0].detach().numpy()).mean() > 0.5
