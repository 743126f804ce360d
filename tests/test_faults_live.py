"""More faults: signals on live streams and long runs, hostile files, damaged
caches, environment errors. Same rules as test_faults.py: real signals, real streams on
127.0.0.1, one clear line, the right exit code, nothing lost or half-written."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
from test_faults import clip, model  # noqa: F401 (fixtures)

from conftest import default_sigint, run_cli

# A live MPEG-TS stream on a TCP socket, as `ffmpeg -re -stream_loop -1 -i IN -c copy -f
# mpegts tcp://...?listen=1` serves it: FFmpeg's own listener (through PyAV), packets copied
# at their real-time pace, the file looped forever.
SERVE = """
import sys, time, av
src, url = sys.argv[1], sys.argv[2]
out = av.open(url, "w", format="mpegts")
inp = av.open(src)
vs = inp.streams.video[0]
ost = out.add_stream_from_template(vs)
step = int(1 / (vs.average_rate * vs.time_base))
t0, off, last = time.monotonic(), 0, 0
while True:
    inp.seek(0)
    for p in inp.demux(vs):
        if p.dts is None:
            continue
        p.pts += off
        p.dts += off
        last = max(last, p.pts)
        p.stream = ost
        time.sleep(max(0.0, t0 + float(p.pts * vs.time_base) - time.monotonic()))
        out.mux(p)
    off = last + step
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.1)


def cli(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "jsnet_edge", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )


@pytest.mark.parametrize("stalled", [False, True], ids=["streaming", "stalled"])
def test_ctrl_c_on_a_live_stream_keeps_the_recording(stalled, model, clip, tmp_path):  # noqa: F811
    url = f"tcp://127.0.0.1:{free_port()}"
    server = subprocess.Popen([sys.executable, "-c", SERVE, str(clip), url + "?listen=1"])
    try:
        time.sleep(0.5)
        out = tmp_path / "rec.mp4"
        proc = cli("video", url, "-o", out, "--model", model, "--no-progress")
        # recording: the hidden temporary video holds frames
        wait_for(
            lambda: any(p.stat().st_size > 2000 for p in tmp_path.glob(".rec.*")),
            60,
            "the recording to start",
        )
        time.sleep(1.0)
        if stalled:  # the stream stops sending but stays connected
            server.send_signal(signal.SIGSTOP)
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("jsnet-edge video hung after Ctrl-C on a live stream")
    finally:
        server.send_signal(signal.SIGCONT)
        server.kill()
        server.wait()
    assert proc.returncode == 0, (proc.returncode, stderr[-1500:])
    assert "Traceback" not in stderr and "Aborted" not in stderr
    assert "stopping the capture" in stderr
    with av.open(str(out)) as c:  # a whole, playable file up to the last frame
        frames = sum(1 for _ in c.decode(video=0))
    assert frames >= 10
    assert f"restored {frames} frames" in stdout
    assert sorted(os.listdir(tmp_path)) == ["rec.mp4"]


# --- image archives without Ray: killed runs resume, lists, planning is linear ------------


def test_a_killed_image_run_resumes_and_lists_work_without_ray(model, tmp_path):  # noqa: F811
    import cv2
    import numpy as np

    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(30):
        cv2.imwrite(str(src / f"im{i:03d}.png"), rng.integers(0, 256, (160, 160, 3), np.uint8))
    out = tmp_path / "out"
    proc = cli("image", src, "-o", out, "--model", model)
    wait_for(lambda: len(list(out.glob("im*.png"))) >= 3 or proc.poll() is not None, 60, "work")
    proc.kill()  # SIGKILL: no handler runs
    proc.communicate()
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("im*.png")}
    rerun = run_cli("image", src, "-o", out, "--model", model)
    assert f"{30 - len(before)} done, {len(before)} skipped" in rerun.stdout, rerun.stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("im*.png") if p.name in before} == (
        before
    )
    assert all(cv2.imread(str(out / f"im{i:03d}.png")) is not None for i in range(30))
    # a list of paths (one a line, relative to the list), as --help offers
    listed = tmp_path / "list.txt"
    listed.write_text("in/im000.png\n# a comment\nin/im001.png\n")
    run = run_cli("image", listed, "-o", tmp_path / "from-list", "--model", model)
    assert "2 done" in run.stdout
    assert sorted(p.name for p in (tmp_path / "from-list").iterdir()) == [
        "im000.png",
        "im001.png",
    ]


def test_planning_many_images_is_linear(tmp_path):
    from jsnet_edge.distributed import expand_inputs, plan_outputs
    from jsnet_edge.image_files import plan_image_outputs

    src = tmp_path / "in"
    src.mkdir()
    for i in range(3000):
        (src / f"{i:05d}.png").touch()
    t = time.perf_counter()
    plan = plan_outputs(expand_inputs([src], "image"), tmp_path / "out", "image")
    pairs = plan_image_outputs([src], tmp_path / "out2")
    # linear: well under a second here; the quadratic planner took minutes for 2000 files
    assert len(plan) == len(pairs) == 3000 and time.perf_counter() - t < 10


# --- hostile files: one clear line and exit 1, before anything is allocated --------------


def _png_claiming(w: int, h: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


def _hostile_model(src: Path, tmp_path: Path, **changes) -> Path:
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    genotype = json.loads(meta["genotype"])
    for k, v in changes.items():
        if k == "genotype":
            genotype = v
        elif k == "colors":
            meta["colors"] = str(v)
        else:
            genotype[k] = v
    meta["genotype"] = json.dumps(genotype)
    path = tmp_path / f"evil-{'-'.join(changes)}.safetensors"
    save_file(tensors, str(path), metadata=meta)
    return path


@pytest.mark.parametrize(
    "case",
    ["png-100000x100000", "width", "cells", "genotype-list", "colors", "table", "input-size"],
)
def test_hostile_files_get_one_line_and_exit_1(case, model, tmp_path):  # noqa: F811
    from test_faults import one_line_error

    out = tmp_path / "o.png"
    if case == "png-100000x100000":
        bad = tmp_path / "huge.png"
        bad.write_bytes(_png_claiming(100000, 100000))
        runs = [("image", bad, "-o", out, "--model", model)]
        photos = tmp_path / "photos"
        photos.mkdir()
        (photos / "huge.png").write_bytes(bad.read_bytes())
        runs.append(("eval", "--model", model, "--data", photos))
        runs.append(("make-sample-clip", tmp_path / "c.mp4", "--photo", bad, "--seconds", "1"))
        expect = "megapixels"
    elif case == "table":
        evil = tmp_path / "evil.pt"
        evil.write_bytes(bytes(range(256)) * 4)
        runs = [("profile", "--table", evil, "--input-size", "32x32", "--widths", "8")]
        expect = "latency table"
    elif case == "input-size":
        runs = [("export", model, "-o", tmp_path / "m.onnx", "--input-size", "100000x100000")]
        expect = "at most"
    else:
        change = {
            "width": {"width": 100000},
            "cells": {"cells": 100000},
            "genotype-list": {"genotype": ["rb", "cea"]},
            "colors": {"colors": 100000},
        }[case]
        evil = _hostile_model(model, tmp_path, **change)
        runs = [("image", _photo(tmp_path), "-o", out, "--model", evil), ("info", evil)]
        if case == "width":
            runs.append(("export", evil, "-o", tmp_path / "m.onnx"))
        expect = "invalid network" if case != "colors" else "broken metadata"
    for args in runs:
        line = one_line_error(run_cli(*args, check=False))
        assert expect in line, (args, line)
    assert not out.exists()


def _photo(tmp_path: Path) -> Path:
    import cv2
    import numpy as np

    p = tmp_path / "small.png"
    cv2.imwrite(str(p), np.zeros((32, 32, 3), np.uint8))
    return p


# --- the memory check reads the container's limit, not only the host's ------------------


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_available_memory_reads_the_cgroup_limit(version, tmp_path):
    from jsnet_edge.devices import available_memory

    gb = 2**30
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/meminfo").write_text(
        f"MemTotal: {64 * gb // 1024} kB\nMemAvailable: {60 * gb // 1024} kB\n"
    )
    if version == "v2":
        (tmp_path / "proc/self/cgroup").write_text("0::/job/step\n")
        group = tmp_path / "sys/fs/cgroup/job/step"
        group.mkdir(parents=True)
        (group / "memory.max").write_text("max\n")  # no limit here: the parent's holds
        (group.parent / "memory.max").write_text(f"{4 * gb}\n")
        (group.parent / "memory.current").write_text(f"{3 * gb}\n")
        (group.parent / "memory.stat").write_text(f"anon 1\ninactive_file {gb // 2}\n")
        assert available_memory(tmp_path) == gb + gb // 2  # 4 - (3 - 0.5 cache)
    else:
        (tmp_path / "proc/self/cgroup").write_text("4:memory:/docker/abc\n1:cpu:/\n")
        group = tmp_path / "sys/fs/cgroup/memory/docker/abc"
        group.mkdir(parents=True)
        (group / "memory.limit_in_bytes").write_text(f"{2 * gb}\n")
        (group / "memory.usage_in_bytes").write_text(f"{gb}\n")
        assert available_memory(tmp_path) == gb
    (tmp_path / "proc/self/cgroup").write_text("0::/\n")  # no limit: the host's figure
    assert available_memory(tmp_path) == 60 * gb


# --- damaged caches heal: the entry is computed again, with a one-line note --------------


def test_damaged_caches_are_recomputed_with_a_note(model, tmp_path, monkeypatch):  # noqa: F811
    import json

    from jsnet_edge.cache import CacheHealedWarning
    from jsnet_edge.export.onnx import export_onnx
    from jsnet_edge.models import load_model
    from jsnet_edge.runtime.autotune import fastest
    from jsnet_edge.runtime.factory import open_onnx

    monkeypatch.setenv("JSNET_EDGE_CACHE", str(tmp_path / "cache"))
    # the backend choice: a record that is a list
    onnx = export_onnx(load_model(model), tmp_path / "m.onnx")
    auto = tmp_path / "cache" / "auto"
    auto.mkdir(parents=True)
    (auto / "k.json").write_text("[1, 2]")
    openers = {"onnxruntime": lambda: open_onnx(onnx, "onnxruntime", "cpu", "fp32", 1)}
    with pytest.warns(CacheHealedWarning, match="backend choice"):
        assert fastest("k", openers, 3) == "onnxruntime"
    assert json.loads((auto / "k.json").read_text())["choice"] == "onnxruntime"
    # the exported graph: cut in half, every later run of the model used to fail
    photo = _photo(tmp_path)
    run_cli("image", photo, "-o", tmp_path / "a.png", "--model", model, "--backend", "onnxruntime")
    (graph,) = (tmp_path / "cache" / "onnx").glob("*.onnx")
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])
    proc = run_cli(
        "image", photo, "-o", tmp_path / "b.png", "--model", model, "--backend", "onnxruntime"
    )
    notes = [ln for ln in proc.stderr.splitlines() if "damaged" in ln]
    assert len(notes) == 1 and notes[0].startswith("note: the cached graph"), proc.stderr
    assert (tmp_path / "b.png").read_bytes() == (tmp_path / "a.png").read_bytes()
    run_cli("image", photo, "-o", tmp_path / "c.png", "--model", model, "--backend", "onnxruntime")


# --- environment errors are one line and exit 1, not internal errors ---------------------


def test_names_too_long_and_full_disks_are_environment_errors(model, tmp_path):  # noqa: F811
    from test_faults import leftovers, one_line_error, tmpfs

    photo = _photo(tmp_path)
    ok = tmp_path / ("a" * 246 + ".png")  # 250 bytes: legal, and its temporary name too
    run_cli("image", photo, "-o", ok, "--model", model)
    assert ok.is_file()
    too_long = tmp_path / ("b" * 254 + ".png")  # 258 bytes
    line = one_line_error(run_cli("image", photo, "-o", too_long, "--model", model, check=False))
    assert "258 bytes" in line
    deep = Path("/" + "/".join(["d" * 200] * 21)) / "o.png"  # over PATH_MAX
    line = one_line_error(run_cli("image", photo, "-o", deep, "--model", model, check=False))
    assert "full path" in line
    with tmpfs(tmp_path / "full", "1m") as full:
        (full / "ballast").write_bytes(b"x" * 1_000_000)
        proc = run_cli(
            "make-sample-clip", full / "c.mp4", "--seconds", "1", "--size", "320x240", check=False
        )
        assert "disk is full" in one_line_error(proc)
        assert leftovers(full) == ["ballast"]


# --- one Restorer, several threads ----------------------------------------------------------


def test_one_openvino_restorer_serves_four_threads():
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from jsnet_edge.restorer import Restorer

    r = Restorer("denoise-rt", backend="openvino", precision="fp32")
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (96, 128, 3), np.uint8) for _ in range(16)]
    alone = [r(f) for f in frames]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(r, frames))
    assert all(np.array_equal(a, b) for a, b in zip(alone, together, strict=True))


# --- bench stopped: one line and the right code, no worker left behind --------------------


def _children(pid: int) -> list[int]:
    kids = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in kids.read_text().split()] if kids.exists() else []


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_bench_says_one_line(sig, code, model, tmp_path):  # noqa: F811
    proc = subprocess.Popen(
        [sys.executable, "-m", "jsnet_edge", "bench", str(model), "--input-size", "32x32"]
        + ["--repeats", "100000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        preexec_fn=default_sigint,
    )
    try:
        wait_for(lambda: _children(proc.pid) or proc.poll() is not None, 60, "a bench worker")
        time.sleep(0.3)  # the worker is still starting (importing torch)
        workers = _children(proc.pid)
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)  # Ctrl-C reaches the whole foreground group
        else:
            proc.send_signal(sig)  # docker stop, systemd: the main process only
        _, stderr = proc.communicate(timeout=60)
    finally:  # a failed check must not leave a benchmark running for the rest of the suite
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    wait_for(lambda: not any(Path(f"/proc/{w}").exists() for w in workers), 10, "the end")


def test_a_ray_address_where_nothing_listens_fails_at_once(model, tmp_path):  # noqa: F811
    pytest.importorskip("ray", reason="the ray extra is not installed")
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((16, 16, 3), np.uint8))
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    t = time.monotonic()
    run = run_cli(
        "image",
        tmp_path / "a.png",
        "-o",
        tmp_path / "out",
        "--model",
        model,
        "--ray",
        address,
        check=False,
    )
    assert run.returncode == 1 and time.monotonic() - t < 60, run.stderr
    assert run.stderr.strip().splitlines() == [
        f"error: cannot join the Ray cluster at '{address}': nothing answers at {address} "
        "(Connection refused); start one there with `ray start --head`, or give --ray local"
    ]
