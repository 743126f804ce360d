"""Faults and bad input, as a hostile but realistic user meets them: a full disk, a
read-only folder, two runs writing one file, a variable-frame-rate video, a huge image,
floats on the wrong scale, files of the wrong kind. Each must end with one clear line, the
right exit code (README "Exit codes"), and nothing lost or half-written on disk.

Full disks and read-only folders are real: small tmpfs mounts (CI runs as root); where
mounting is not allowed the test says so and skips.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import uuid
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from skimage import data

from conftest import run_cli
from jsnet_edge.errors import ImageError
from jsnet_edge.models import Genotype, JSNet, save_model
from jsnet_edge.restorer import Restorer, memory_needed
from jsnet_edge.video.sample import make_sample_clip

TINY = Genotype.from_string("C8-L1-N1:srb:cea")


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return save_model(JSNet(TINY, task="denoise"), tmp_path_factory.mktemp("m") / "dn.safetensors")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("clip")
    return make_sample_clip(d / "in.mp4", frames=12, size=(128, 96), sigma=20).path


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("photo") / "astronaut.png"
    cv2.imwrite(str(p), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    return p


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "1m", readonly: bool = False):
    """A real small filesystem (full after `size`), or read-only; skips without mount."""
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if readonly else "")
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, text=True
    )
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()[:80]}); CI runs as root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def one_line_error(proc, code: int = 1) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout[-500:], proc.stderr[-1500:])
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# --- a full disk -------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["image", "video", "export"])
def test_a_full_disk_is_an_error_and_leaves_nothing(command, model, clip, photo, tmp_path):
    with tmpfs(tmp_path / "full", "1m") as full:
        (full / "ballast").write_bytes(b"x" * 900_000)  # 100 kB left
        if command == "image":
            big = tmp_path / "big.png"  # a noisy 1600x1200 PNG: megabytes compressed
            rng = np.random.default_rng(0)
            cv2.imwrite(str(big), rng.integers(0, 256, (1200, 1600, 3), dtype=np.uint8))
            args = ("image", big, "-o", full / "out.png", "--model", model)
        elif command == "video":  # lossless output: megabytes for 12 frames
            args = (
                "video",
                clip,
                "-o",
                full / "out.mkv",
                "--model",
                model,
                "--codec",
                "ffv1",
                "--no-progress",
            )
        else:
            args = ("export", "sr-x2", "-o", full / "out.onnx")  # about 2 MB
        line = one_line_error(run_cli(*args, check=False))
        assert "disk is full" in line or "No space left" in line, line
        assert leftovers(full) == ["ballast"]


# --- a read-only folder: refused before any work -----------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("image", "{photo}", "-o", "{ro}/out.png", "--model", "{model}"),
        ("export", "{model}", "-o", "{ro}/m.onnx"),
        ("video", "{clip}", "-o", "{ro}/out.mp4", "--model", "{model}"),
        ("video", "{clip}", "-o", "{tmp}/ok.mp4", "--model", "{model}", "--stats", "{ro}/s.json"),
        ("convert-official", "{model}", "--scale", "2", "-o", "{ro}/m.safetensors"),
        ("calibrate", "{model}", "-o", "{ro}/q.onnx"),
        (
            "profile",
            "--input-size",
            "32x32",
            "--widths",
            "8",
            "--max-cells",
            "1",
            "-o",
            "{ro}/t.json",
        ),
    ],
    ids=["image", "export", "video", "video-stats", "convert", "calibrate", "profile"],
)
def test_a_read_only_folder_is_refused_before_the_work(args, model, clip, photo, tmp_path):
    with tmpfs(tmp_path / "ro", "1m", readonly=True) as ro:
        filled = [
            str(a).format(ro=ro, tmp=tmp_path, photo=photo, model=model, clip=clip) for a in args
        ]
        line = one_line_error(run_cli(*filled, check=False))
        assert "not writable" in line or "read-only" in line, line
        assert not (tmp_path / "ok.mp4").exists()  # nothing done, so nothing written either


# --- two runs writing one file -----------------------------------------------------------


def test_two_video_runs_to_one_output_never_replace_each_other(model, clip, tmp_path):
    out = tmp_path / "same.mp4"
    procs: list[subprocess.CompletedProcess] = []

    def go() -> None:
        procs.append(
            run_cli("video", clip, "-o", out, "--model", model, "--no-progress", check=False)
        )

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # One wins; the other refuses, at its start ("exists") or, when both ran at once, at
    # its rename ("created by something else while this ran"): never both exit 0.
    assert sorted(p.returncode for p in procs) == [0, 1]
    line = one_line_error(next(p for p in procs if p.returncode == 1))
    assert "exists" in line or "created by something else" in line
    with av.open(str(out)) as c:  # whatever happened, the file is one whole video
        assert c.streams.video[0].frames == 12
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_outputs_that_exist_are_not_replaced_without_overwrite(model, clip, photo, tmp_path):
    precious = tmp_path / "precious.png"
    precious.write_bytes(b"a picture that matters")
    cases = [
        ("video", clip, "-o", tmp_path / "v.mp4", "--model", model, "--stats", precious),
        ("bench", model, "--input-size", "32x32", "--repeats", "1", "--json", precious),
        ("profile", "--input-size", "32x32", "--widths", "8", "--max-cells", "1", "-o", precious),
    ]
    for args in cases:
        line = one_line_error(run_cli(*args, check=False))
        assert "exists" in line and "--overwrite" in line
        assert precious.read_bytes() == b"a picture that matters"
    assert not (tmp_path / "v.mp4").exists()


# --- video as cameras and phones make it ------------------------------------------------


def test_a_variable_frame_rate_video_keeps_its_timing(model, tmp_path):
    src = tmp_path / "vfr.mkv"
    pts = [0, 40, 80, 100, 120, 200, 240, 260, 300, 400, 420, 440]  # ms: irregular gaps
    rng = np.random.default_rng(0)
    with av.open(str(src), "w") as c:
        v = c.add_stream("libx264", rate=25, options={"crf": "18"})
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        v.codec_context.time_base = Fraction(1, 1000)
        for t in pts:
            f = av.VideoFrame.from_ndarray(rng.integers(0, 256, (64, 96, 3), np.uint8), "bgr24")
            f.pts, f.time_base = t, Fraction(1, 1000)
            c.mux(v.encode(f))
        c.mux(v.encode(None))
    out = tmp_path / "out.mkv"
    proc = run_cli("video", src, "-o", out, "--model", model, "--no-progress", check=False)
    assert proc.returncode == 0, proc.stderr
    with av.open(str(out)) as c:
        got = [round(float(f.pts * f.time_base) * 1000) for f in c.decode(video=0)]
    assert got == pts  # every frame, at its own time: not resampled to a constant rate


def test_what_is_not_a_video_is_named(model, photo, tmp_path):
    audio = tmp_path / "voice.m4a"
    with av.open(str(audio), "w") as c:
        a = c.add_stream("aac", rate=16000)
        for i in range(10):
            f = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            f.sample_rate, f.pts = 16000, i * 1024
            c.mux(a.encode(f))
        c.mux(a.encode(None))
    line = one_line_error(
        run_cli("video", audio, "-o", tmp_path / "o.mp4", "--model", model, check=False)
    )
    assert "no video stream" in line
    line = one_line_error(
        run_cli("video", photo, "-o", tmp_path / "o.mp4", "--model", model, check=False)
    )
    assert "is an image" in line and "jsnet-edge image" in line


def test_a_preview_named_like_the_output_is_refused(model, clip, tmp_path):
    out = tmp_path / "o.mp4"
    line = one_line_error(
        run_cli("video", clip, "-o", out, "--preview", out, "--model", model, check=False)
    )
    assert "is the output file itself" in line


# --- images: memory, scale, kinds ------------------------------------------------------


def test_a_large_image_runs_in_bounded_memory(tmp_path):
    """Tiles stream from the input into a preallocated output: peak memory grows with the
    image by a few bytes per pixel (input and output), not the ~60 it took. (The warm-up
    restores a 1000 px image, so the runtime has compiled the tile's shape.)"""
    code = (
        "import resource, sys, numpy as np; from jsnet_edge.restorer import Restorer;"
        "r = Restorer('denoise-rt', backend='openvino', precision='fp32', tile=512);"
        "n = int(sys.argv[1]); img = np.zeros((n, n, 3), np.uint8); r(img[:1000, :1000]);"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;"
        "out = r(img); peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;"
        "print((peak - base) * 1024 / (n * n))"
    )
    extra = float(
        subprocess.run(
            [sys.executable, "-c", code, "4000"], capture_output=True, text=True, check=True
        ).stdout.split()[-1]
    )
    assert extra < 16, f"{extra:.1f} bytes per pixel beyond input and model"


def test_memory_that_cannot_fit_is_refused_with_the_amount():
    need = memory_needed(200_000, 200_000, 3, np.uint8, 2, 512, 3)
    assert need > 400 * 2**30  # the output alone is 480 GB
    r = Restorer(JSNet(TINY, task="denoise"), backend="torch")
    huge = np.lib.stride_tricks.as_strided(np.zeros(3, np.uint8), (200_000, 200_000, 3), (0, 0, 1))
    with pytest.raises(ImageError, match=r"needs about .* GB of memory .* GB are available"):
        r(huge)


def test_floats_on_the_wrong_scale_are_refused():
    r = Restorer(JSNet(TINY, task="denoise"), backend="torch")
    img = data.astronaut().astype(np.float32)  # 0..255 in a float array
    with pytest.raises(ImageError, match=r"0\.\.1.*divide by 255"):
        r(img)
    assert r(img / 255.0).max() <= 1.0


@pytest.mark.parametrize(
    ("setup", "args", "expect"),
    [
        (
            "text.pt",
            ("convert-official", "{f}", "--scale", "2", "-o", "{tmp}/m.safetensors"),
            "not a PyTorch checkpoint",
        ),
        ("tiny.pt", ("info", "{f}"), "neither a jsnet-edge model nor a PyTorch checkpoint"),
        (
            None,
            ("image", "{photo}", "-o", "{tmp}/out.gif", "--model", "{model}"),
            "cannot write .gif images",
        ),
        (
            None,
            ("image", "{photo}", "-o", "{tmp}/o.png", "--model", "{model}", "--device", "tpu"),
            "unknown device 'tpu'",
        ),
        ("text.onnx", ("bench", "{model}", "--int8", "{f}"), "not a readable ONNX file"),
        (None, ("profile", "--repeats", "0"), "--repeats must be at least 1"),
        (
            None,
            (
                "search",
                "--task",
                "denoise",
                "--latency-budget",
                "10ms",
                "--data",
                "{tmp}",
                "--out",
                "{tmp}/run",
                "--unshuffle",
                "0",
            ),
            "unshuffle",
        ),
        (
            None,
            (
                "train",
                "--task",
                "denoise",
                "--data",
                "{tmp}",
                "--steps",
                "1",
                "--out",
                "{tmp}/m.safetensors",
                "--lr",
                "-1",
            ),
            "--lr must be a positive number",
        ),
        ("dots", ("eval", "--model", "{model}", "--data", "{f}"), "dot.png"),
        (None, ("bench", "{tmp}/missing.safetensors", "--repeats", "1"), "no backend could run"),
    ],
    ids=[
        "text-as-pt",
        "5-byte-pt",
        "gif-output",
        "device-tpu",
        "bench-int8-text",
        "profile-repeats-0",
        "search-unshuffle-0",
        "train-negative-lr",
        "eval-tiny-image",
        "bench-nothing-ran",
    ],
)
def test_bad_input_gets_one_clear_line(setup, args, expect, model, photo, tmp_path):
    f = tmp_path / (setup or "unused")
    if setup == "text.pt":
        f.write_text("this is a text file, not a checkpoint\n" * 10)
    elif setup == "tiny.pt":
        f.write_bytes(b"hello")
    elif setup == "text.onnx":
        f.write_text("not onnx")
    elif setup == "dots":
        f.mkdir()
        cv2.imwrite(str(f / "dot.png"), np.zeros((2, 2, 3), np.uint8))
    filled = [str(a).format(f=f, tmp=tmp_path, photo=photo, model=model) for a in args]
    line = one_line_error(run_cli(*filled, check=False))
    assert expect in line, line
    assert not (tmp_path / "run").exists() and not (tmp_path / "out.gif").exists()


def test_gray_alpha_png_stays_gray_alpha(model, tmp_path):
    src = tmp_path / "ga.png"
    ga = np.dstack([np.full((40, 50), 120, np.uint8), np.full((40, 50), 200, np.uint8)])
    from jsnet_edge.images import load_image, save_image

    save_image(src, ga)
    assert load_image(src).shape == (40, 50, 2)
    run_cli("image", src, "-o", tmp_path / "out.png", "--model", model)
    out = load_image(tmp_path / "out.png")
    assert out.shape == (40, 50, 2) and np.array_equal(out[:, :, 1], ga[:, :, 1])


def test_a_corrupt_png_says_so_in_one_line(model, photo, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(photo.read_bytes()[:400])
    proc = run_cli("image", bad, "-o", tmp_path / "o.png", "--model", model, check=False)
    line = one_line_error(proc)
    assert "corrupt" in line and "libpng" not in proc.stderr


def test_a_failed_search_leaves_no_run_folder(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    run = tmp_path / f"run-{uuid.uuid4().hex[:6]}"
    proc = run_cli(
        "search",
        "--task",
        "denoise",
        "--latency-budget",
        "0.001ms",
        "--data",
        photos,
        "--out",
        run,
        "--input-size",
        "32x32",
        "--widths",
        "8",
        "--max-cells",
        "1",
        "--steps",
        "2",
        "--repeats",
        "1",
        check=False,
    )
    line = one_line_error(proc)
    assert "below the smallest network" in line and not run.exists()
