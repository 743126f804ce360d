"""Whole archives on a Ray cluster (a local one, started by the test, shut down after):
the single machine's guarantees hold, outputs are identical, re-runs skip what is done."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from conftest import run_cli
from jsnet_edge.distributed import ArchiveConfig, restore_archive
from jsnet_edge.images import load_image
from jsnet_edge.models import Genotype, JSNet, save_model
from jsnet_edge.video.sample import make_sample_clip

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install '.[ray]')")
TINY = Genotype.from_string("C8-L1-N1:srb:cea")


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    d = tmp_path_factory.mktemp("archive")
    photos = d / "photos"
    photos.mkdir()
    for name in ("astronaut", "coffee", "chelsea"):
        cv2.imwrite(
            str(photos / f"{name}.png"), cv2.cvtColor(getattr(data, name)(), cv2.COLOR_RGB2BGR)
        )
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    clips = d / "clips"
    clips.mkdir()
    for i, photo in enumerate(("coffee.png", "rocket.jpg")):
        make_sample_clip(clips / f"clip{i}.mp4", frames=6, size=(96, 64), photo=photo)
    model = save_model(JSNet(TINY, task="denoise"), d / "dn.safetensors")
    return {"photos": photos, "clips": clips, "model": model, "root": d}


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def same_pixels(a, b) -> bool:
    return np.array_equal(load_image(a), load_image(b))


def test_images_on_a_local_cluster_match_the_single_machine(archive, cluster, tmp_path):
    cfg = ArchiveConfig(kind="image", model=str(archive["model"]), backend="onnxruntime")
    out = tmp_path / "restored"
    summary = restore_archive([archive["photos"]], out, cfg, ray_address="local", workers=2)
    assert sorted(p.rsplit("/", 1)[-1] for p in summary.done) == [
        "astronaut.png",
        "chelsea.png",
        "coffee.png",
    ]
    assert list(summary.failed) and "broken.png" in next(iter(summary.failed))
    assert "corrupt" in next(iter(summary.failed.values()))
    assert summary.workers == 2 and summary.units == 3
    single = tmp_path / "single"
    run_cli(
        "image",
        archive["photos"] / "astronaut.png",
        archive["photos"] / "coffee.png",
        archive["photos"] / "chelsea.png",
        "-o",
        single,
        "--model",
        archive["model"],
        "--backend",
        "onnxruntime",
    )
    for name in ("astronaut.png", "coffee.png", "chelsea.png"):
        assert same_pixels(out / name, single / name)  # bit for bit
    again = restore_archive([archive["photos"]], out, cfg, ray_address="local")
    assert len(again.skipped) == 3 and not again.done and len(again.failed) == 1
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_videos_on_a_local_cluster_match_the_single_machine(archive, cluster, tmp_path):
    from jsnet_edge.video import VideoConfig

    cfg = ArchiveConfig(
        kind="video",
        model=str(archive["model"]),
        backend="onnxruntime",
        precision="fp32",
        video=VideoConfig(codec="ffv1"),
    )
    out = tmp_path / "restored"
    (tmp_path / "list.txt").write_text(
        "# two clips\n" + "\n".join(str(p) for p in sorted(archive["clips"].iterdir())) + "\n"
    )
    summary = restore_archive([tmp_path / "list.txt"], out, cfg, ray_address="local")
    assert len(summary.done) == 2 and not summary.failed and summary.units == 12
    single = tmp_path / "single.mkv"
    run_cli(
        "video",
        archive["clips"] / "clip0.mp4",
        "-o",
        single,
        "--model",
        archive["model"],
        "--backend",
        "onnxruntime",
        "--precision",
        "fp32",
        "--codec",
        "ffv1",
        "--no-progress",
    )
    a = _frames(out / "clip0.mkv")  # ffv1 goes in .mkv
    b = _frames(single)
    assert len(a) == len(b) == 6 and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _frames(path):
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_the_command_line_reports_and_fails_for_a_broken_file(archive, tmp_path):
    out = tmp_path / "cli"
    proc = run_cli(
        "image",
        archive["photos"],
        "-o",
        out,
        "--model",
        archive["model"],
        "--backend",
        "onnxruntime",
        "--ray",
        "local",
        "--workers",
        "2",
        check=False,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "3 done, 0 skipped (already there), 1 failed" in proc.stdout
    assert "broken.png" in proc.stderr and "1 of 4 files failed" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.png", "chelsea.png", "coffee.png"]


def test_a_killed_worker_is_restarted_and_its_file_tried_again(archive, cluster, tmp_path):
    """SIGKILL of one Ray worker mid-archive: the actor restarts, the file it held is
    restored by a retry, and the archive finishes with nothing lost."""
    import os
    import signal

    import psutil

    cfg = ArchiveConfig(kind="image", model=str(archive["model"]), backend="onnxruntime")
    killed = []

    def kill_one(result: dict) -> None:
        if killed:
            return
        for p in psutil.process_iter(["cmdline"]):
            if any("ray::_Worker" in part for part in (p.info["cmdline"] or [])):
                os.kill(p.pid, signal.SIGKILL)
                killed.append(p.pid)
                return

    out = tmp_path / "out"
    summary = restore_archive(
        [archive["photos"]], out, cfg, ray_address="local", workers=2, on_result=kill_one
    )
    assert killed, "no Ray worker process was found to kill"
    assert set(summary.failed) == {str(archive["photos"] / "broken.png")}
    assert len(summary.done) == 3 and len(list(out.glob("*.png"))) == 3


def test_sigterm_stops_a_local_cluster_run_in_one_line(archive, tmp_path):
    """SIGTERM to `image --ray local` (docker stop, a scheduler): exit 143 and one line,
    not Ray's core dump."""
    import os
    import signal
    import subprocess
    import sys
    import time

    many = tmp_path / "many"
    many.mkdir()
    src = archive["photos"] / "astronaut.png"
    for i in range(40):
        (many / f"im{i:03d}.png").write_bytes(src.read_bytes())
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "jsnet_edge", "image", str(many), "-o", str(out)]
        + ["--model", str(archive["model"]), "--backend", "onnxruntime", "--ray", "local"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out.is_dir() and any(out.glob("*.png"))):
        time.sleep(0.2)
    assert out.is_dir() and any(out.glob("*.png")), "the archive never started"
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=90)
    lines = [line for line in err.splitlines() if line.strip() and "%|" not in line]
    assert proc.returncode == 143, err[-2000:]
    assert "terminated" in err and "Traceback" not in err and "core dumped" not in err
    assert len([line for line in lines if not line.startswith("note:")]) <= 2, err[-2000:]
