"""The video pipeline end to end: real clips (scikit-image photographs with a camera pan,
Gaussian noise and a sine-tone track), the real `jsnet-edge video` command, PyAV to look
inside the outputs (there is no ffprobe here)."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from skimage import data

from conftest import run_cli
from jsnet_edge.errors import JSNetEdgeError
from jsnet_edge.metrics import psnr
from jsnet_edge.models import PAPER, Genotype, JSNet, save_model
from jsnet_edge.restorer import Restorer
from jsnet_edge.video import VideoConfig, process, stream
from jsnet_edge.video.sample import clean_frames, make_sample_clip

TINY = Genotype.from_string("C8-L1-N1:srb:cea")
SIZE = (128, 96)
META = {"title": "astronaut pan", "comment": "made by test_video"}


def bgr(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def read_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            return frames
        frames.append(f)


def describe(path: Path) -> dict:
    """What PyAV sees in a file: frame count, rate, size, rotation, audio, tags."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        first = next(c.decode(video=0))
        audio = [float(a.duration * a.time_base) for a in c.streams.audio]
        return {
            "frames": v.frames,
            "rate": v.average_rate,
            "size": (v.width, v.height),
            "rotation": first.rotation,
            "audio_s": audio,
            "meta": dict(c.metadata),
            "codec": v.codec_context.name,
            "pix_fmt": v.codec_context.pix_fmt,
            "video_s": float(v.duration * v.time_base),
        }


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    astro = bgr(data.astronaut())
    out = {
        "noisy": make_sample_clip(
            d / "noisy.mp4",
            frames=10,
            fps=25,
            size=SIZE,
            sigma=25,
            photo=astro,
            metadata=META,
            crf=12,
        ).path,
        "rotated": make_sample_clip(
            d / "rotated.mp4",
            frames=8,
            fps=24,
            size=(96, 64),
            photo=bgr(data.coffee()),
            rotation=90,
        ).path,
        "long": make_sample_clip(
            d / "long.mp4", frames=150, fps=25, size=(160, 96), photo=bgr(data.chelsea())
        ).path,
    }
    out["astro"] = astro
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return {
        "sr": save_model(JSNet(TINY, task="sr-x2"), d / "sr.safetensors"),
        "dn": save_model(JSNet(TINY, task="denoise"), d / "dn.safetensors"),
        # Untrained but paper-sized: slow enough (~0.1 s a frame) to interrupt mid-run.
        "slow": save_model(JSNet(PAPER, task="denoise"), d / "slow.safetensors"),
    }


def test_hd_frames_take_the_lighter_real_time_denoiser(clips, tmp_path):
    """From 1280x720 on `--task denoise` takes denoise-hd (0.6 of denoise-rt's time a
    frame), says so in the summary and the stats, and still restores."""
    src = make_sample_clip(
        tmp_path / "hd.mp4", frames=3, fps=25, size=(1280, 720), sigma=25, photo=clips["astro"]
    ).path
    dst, stats = tmp_path / "hd-restored.mp4", tmp_path / "hd.json"
    proc = run_cli("video", src, "-o", dst, "--task", "denoise", "--stats", stats)
    s = json.loads(stats.read_text())
    assert s["model"] == "denoise-hd" and "model denoise-hd," in proc.stdout
    assert s["frames_restored"] == 3 and s["frame_format"] == "yuv420p"
    clean = list(clean_frames(3, (1280, 720), clips["astro"]))
    noisy, restored = read_frames(src), read_frames(dst)
    before = np.mean([psnr(n, c, mode="rgb") for n, c in zip(noisy, clean, strict=True)])
    after = np.mean([psnr(r, c, mode="rgb") for r, c in zip(restored, clean, strict=True)])
    assert after > before + 2.0, (before, after)
    # x264 writes its settings into the stream: ultrafast at this size (cabac=0), with the
    # deblocking filter that ultrafast drops back on (it smooths noise the network left)
    data = dst.read_bytes()
    settings = data[data.find(b"options: ") :][:800]
    assert b"cabac=0" in settings and b"deblock=1:0:0" in settings, settings


def test_hd_files_decode_with_frame_threads_and_the_same_frames(clips, tmp_path):
    """From 720p on the reader decodes with FFmpeg's frame threads (camera H.264 is one
    slice a frame: slice threads leave it on one core); every frame and timestamp is what
    a plain decode gives, the last ones (held back by frame threads) included."""
    from jsnet_edge.video.source import AvReader

    src = make_sample_clip(
        tmp_path / "hd.mp4", frames=4, fps=25, size=(1280, 720), sigma=25, photo=clips["astro"]
    ).path
    for path, threads in ((src, "FRAME"), (clips["noisy"], "SLICE")):
        reader = AvReader(path)
        assert threads in str(reader.stream.thread_type)
        reader.format = "yuv420p"
        got = []
        while (item := reader.read()) is not None:
            got.append(item)
        reader.release()
        with av.open(str(path)) as c:
            plain = [(f.to_ndarray(format="yuv420p"), f.pts) for f in c.decode(video=0)]
        assert len(got) == len(plain) > 0 and reader.failures == 0
        for (a, pa), (b, pb) in zip(got, plain, strict=True):
            assert pa == pb and np.array_equal(a, b)


def test_denoise_keeps_frames_rate_audio_metadata_and_improves_psnr(clips, tmp_path):
    src, dst, stats = clips["noisy"], tmp_path / "restored.mp4", tmp_path / "stats.json"
    proc = run_cli("video", src, "-o", dst, "--task", "denoise", "--stats", stats)
    assert f"wrote {dst}" in proc.stdout and "infer" in proc.stdout
    a, b = describe(src), describe(dst)
    assert b["frames"] == a["frames"] == 10 and b["rate"] == a["rate"] == 25
    assert b["size"] == a["size"] and len(b["audio_s"]) == 1
    assert abs(b["audio_s"][0] - a["audio_s"][0]) <= 1 / 25
    assert {k: b["meta"].get(k) for k in META} == META
    clean = list(clean_frames(10, SIZE, clips["astro"]))
    noisy, restored = read_frames(src), read_frames(dst)
    before = np.mean([psnr(n, c, mode="rgb") for n, c in zip(noisy, clean, strict=True)])
    after = np.mean([psnr(r, c, mode="rgb") for r, c in zip(restored, clean, strict=True)])
    assert after > before + 2.0, (before, after)
    s = json.loads(stats.read_text())
    assert s["frames"] == s["frames_read"] == s["frames_restored"] == 10
    assert s["frames_failed"] == 0 and s["complete"] and s["audio_streams"] == 1
    # --task picks the real-time denoiser; the automatic backend says which it took.
    assert s["backend"] in ("openvino", "onnxruntime") and s["device"] == "cpu"
    assert "denoise-rt" in proc.stderr and "picked by auto" in proc.stderr
    assert s["model"] == "denoise-rt" and "model denoise-rt," in proc.stdout
    assert s["precision"] == ("bf16" if "bf16" in proc.stderr else "fp32")
    assert s["task"] == "denoise" and s["pipeline_fps"] > 0
    assert s["frame_format"] == "yuv420p"  # decoder -> network -> encoder, no RGB outside
    for stage in ("decode", "infer", "encode"):
        lat = s["latency_ms"][stage]
        assert 0 <= lat["p50"] <= lat["p99"] and lat["n"] == 10
    # The default output is H.264 at CRF 18 in 4:2:0, what every player decodes; it keeps
    # the restoration where the eye looks: luma within 0.3 dB of the same frames written
    # losslessly.
    assert (b["codec"], b["pix_fmt"]) == ("h264", "yuv420p")
    assert 0 < s["first_frame_s"] and "first restored frame after" in proc.stdout
    lossless = tmp_path / "lossless.mkv"
    run_cli("video", src, "-o", lossless, "--task", "denoise", "--codec", "ffv1")
    with av.open(str(lossless)) as c:
        assert c.streams.video[0].codec_context.name == "ffv1"

    def luma_psnr(frames: list[np.ndarray]) -> float:  # BGR frames: luma of RGB
        return float(
            np.mean([psnr(f[..., ::-1], c[..., ::-1]) for f, c in zip(frames, clean, strict=True)])
        )

    exact, luma = luma_psnr(read_frames(lossless)), luma_psnr(restored)
    # The default output loses nothing that matters to H.264 at CRF 18: its frames never
    # leave 4:2:0 outside the network (converted in the graph, which reads chroma better
    # than FFmpeg's default scaler: +0.3 dB seen here), the lossless one went through RGB.
    assert luma >= exact - 0.3, (luma, exact)


def test_sr_size_rotation_preview_and_libx264(clips, models, tmp_path):
    src, dst, pv = clips["rotated"], tmp_path / "x2.mp4", tmp_path / "side.mp4"
    run_cli(
        "video",
        src,
        "-o",
        dst,
        "--model",
        models["sr"],
        "--preview",
        pv,
        "--batch",
        "3",
        "--codec",
        "libx264",
        "--crf",
        "20",
        "--chroma",
        "444",
    )
    a, b = describe(src), describe(dst)
    assert b["pix_fmt"] == "yuv444p"  # --chroma 444: full colour, for software players
    assert a["rotation"] == 90 and b["rotation"] == 90  # the tag is carried, pixels untouched
    assert b["size"] == (2 * a["size"][0], 2 * a["size"][1]) == (192, 128)
    assert b["frames"] == a["frames"] == 8 and b["rate"] == a["rate"] == 24
    assert abs(b["audio_s"][0] - a["audio_s"][0]) <= 1 / 24
    p = describe(pv)  # side by side, turned upright: two 128x192 halves
    assert p["frames"] == 8 and p["size"] == (256, 192) and p["rotation"] == 0


def test_truncated_input_restores_what_it_can_and_fails(clips, models, tmp_path):
    whole = clips["long"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])
    dst = tmp_path / "out.mp4"
    proc = run_cli("video", cut, "-o", dst, "--model", models["dn"], check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    msg = proc.stderr.strip().splitlines()[-1]
    m = re.search(r"(\d+) of 150 frames could not be decoded; wrote the (\d+) readable", msg)
    assert m and msg.startswith("error: ") and "incomplete" in msg, proc.stderr
    failed, readable = int(m.group(1)), int(m.group(2))
    assert failed + readable == 150 and 0 < readable < 150
    # The readable frames, as a valid file under NAME.partial.EXT: nothing incomplete
    # under the name asked for.
    part = dst.with_name("out.partial.mp4")
    assert not dst.exists() and f"wrote {part} (incomplete)" in proc.stdout
    out = describe(part)
    assert out["frames"] == readable == len(read_frames(part))
    assert out["audio_s"][0] <= out["video_s"] + 1 / 25  # audio cut with the video


def error_of(*args):
    proc = run_cli(*args, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stderr.strip().splitlines()[-1]


def test_refuses_to_overwrite_inputs_and_outputs(clips, models, tmp_path):
    src, m = clips["rotated"], models["dn"]
    assert "is the input" in error_of("video", src, "-o", src, "--model", m, "--overwrite")
    existing = tmp_path / "existing.mp4"
    existing.write_bytes(b"precious")
    assert "exists; pass --overwrite" in error_of("video", src, "-o", existing, "--model", m)
    assert existing.read_bytes() == b"precious"
    run_cli("video", src, "-o", existing, "--model", m, "--overwrite", "--no-progress")
    assert describe(existing)["frames"] == 8
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    assert "cannot read" in error_of("video", text, "-o", tmp_path / "t.mp4", "--model", m)
    # The same checks through the library (no process start each): other names, options.
    restorer = Restorer(m, backend="torch")

    def refused(dst, match, **kw):
        with pytest.raises(JSNetEdgeError, match=match):
            process(kw.pop("src", src), dst, restorer, VideoConfig(**kw))

    link = tmp_path / "link.mp4"
    link.symlink_to(src)
    refused(src, "is the input", src=link, overwrite=True)
    hard = tmp_path / "hard.mp4"
    hard.hardlink_to(src)
    refused(hard, "is the input", overwrite=True)
    refused(tmp_path / "o.mp4", "the preview .* is the input", preview=src)
    refused(tmp_path / "o.mp4", "does not exist", src=tmp_path / "nope.mp4")
    refused(tmp_path / "o.gif", "cannot write .gif")
    refused(tmp_path / "o.mp4", "--crf applies", codec="mp4v", crf=20)  # an OpenCV fourcc
    refused(tmp_path / "o.mp4", "no GUI", preview="window")
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def interrupt(
    src: Path, dst: Path, model: Path, *extra: str, sig: int = signal.SIGINT
) -> subprocess.CompletedProcess:
    """Start `jsnet-edge video`, wait until a few frames are written, send Ctrl-C (or `sig`)."""
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jsnet_edge",
            "video",
            str(src),
            "-o",
            str(dst),
            "--model",
            str(model),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # Ctrl-C as a terminal gives it, even where the test runner was
        # started with SIGINT ignored (a background job of a shell).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    err: list[bytes] = []
    reader = threading.Thread(
        target=lambda: err.extend(iter(lambda: p.stderr.read1(4096), b"")), daemon=True
    )
    reader.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None:
        done = re.findall(rb"(\d+)/150 \[", b"".join(err))
        if done and int(done[-1]) >= 3:
            break
        time.sleep(0.05)
    assert p.poll() is None, "the run ended before it could be interrupted"
    p.send_signal(sig)
    out = p.stdout.read()
    p.wait(timeout=60)
    reader.join(timeout=10)
    return subprocess.CompletedProcess(p.args, p.returncode, out.decode(), b"".join(err).decode())


def test_ctrl_c_leaves_no_output_or_a_partial_one(clips, models, tmp_path):
    dst = tmp_path / "out.mp4"
    proc = interrupt(clips["long"], dst, models["slow"])
    assert proc.returncode == 130 and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing, not even temporaries
    proc = interrupt(clips["long"], dst, models["slow"], "--keep-partial")
    assert proc.returncode == 130
    part = tmp_path / "out.partial.mp4"
    assert sorted(p.name for p in tmp_path.iterdir()) == [part.name]
    assert f"in {part}" in proc.stderr
    assert 3 <= describe(part)["frames"] < 150


def test_sigterm_stops_as_cleanly_as_ctrl_c(clips, models, tmp_path):
    """docker stop, systemd and batch schedulers send SIGTERM: no half-written file stays."""
    proc = interrupt(clips["long"], tmp_path / "out.mp4", models["slow"], sig=signal.SIGTERM)
    assert proc.returncode == 143 and "terminated" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_without_pyav_video_only_and_says_so(clips, models, tmp_path):
    dst = tmp_path / "out.mp4"
    code = (
        "import sys; sys.modules['av'] = None; from jsnet_edge.cli import main; "
        f"sys.argv = ['jsnet-edge', 'video', {str(clips['noisy'])!r}, '-o', {str(dst)!r}, "
        f"'--model', {str(models['dn'])!r}, '--no-progress']; main()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "PyAV is not installed" in proc.stderr and "audio" in proc.stderr
    out = describe(dst)
    assert out["frames"] == 10 and out["audio_s"] == []


@pytest.mark.parametrize(
    "name,codec", [("out.mkv", "libx264"), ("out.avi", None), ("out.mov", None), ("out.webm", None)]
)
def test_containers_keep_an_ntsc_rate_frames_and_audio(models, tmp_path, name, codec):
    # 30000/1001 fps: OpenCV's writer rounds it to 2997/100, the remux puts it back.
    src = make_sample_clip(tmp_path / "ntsc.mp4", frames=6, fps=30000 / 1001, size=(64, 48)).path
    stats = process(
        src, tmp_path / name, Restorer(models["dn"], backend="torch"), VideoConfig(codec=codec)
    )
    assert stats.audio_streams == 1 and stats.metadata_copied
    with av.open(str(tmp_path / name)) as c:
        rate = c.streams.video[0].average_rate
        if name.endswith(".webm"):  # WebM keeps only ms timestamps: the rate is estimated
            assert abs(rate - Fraction(30000, 1001)) < 0.1
        else:
            assert rate == Fraction(30000, 1001)
        assert sum(1 for _ in c.decode(video=0)) == 6 and len(c.streams.audio) == 1


def test_realtime_keeps_the_frame_count(clips, models, tmp_path):
    restorer = Restorer(models["dn"], backend="torch")
    stats = process(clips["noisy"], tmp_path / "rt.mp4", restorer, VideoConfig(realtime=True))
    assert stats.frames == stats.frames_read == 10  # dropped frames are repeated
    assert stats.frames_restored + stats.frames_dropped == 10
    assert describe(tmp_path / "rt.mp4")["frames"] == 10


def test_stream_yields_restored_frames_in_order(models):
    restorer = Restorer(models["dn"], backend="torch")
    photo = bgr(data.astronaut())
    frames = [
        np.ascontiguousarray(photo[10 * i : 10 * i + 64, 20 * i : 20 * i + 80]) for i in range(7)
    ]
    one_by_one = [restorer(f) for f in frames]
    for batch in (1, 3):
        got = list(stream(restorer, iter(frames), batch=batch))
        assert len(got) == 7
        for g, want in zip(got, one_by_one, strict=True):
            assert g.shape == want.shape and np.abs(g.astype(int) - want).max() <= 1
    with pytest.raises(Exception, match="batch must be at least 1"):
        list(stream(restorer, frames, batch=0))


def test_make_sample_clip_command(tmp_path):
    out = tmp_path / "clip.mp4"
    proc = run_cli(
        "make-sample-clip",
        out,
        "--seconds",
        "0.4",
        "--fps",
        "10",
        "--size",
        "96x64",
        "--sigma",
        "10",
    )
    assert "4 frames of 96x64" in proc.stdout and "sine-tone" in proc.stdout
    d = describe(out)
    assert d["frames"] == 4 and d["size"] == (96, 64) and abs(d["audio_s"][0] - 0.4) <= 0.1
    assert "exists; pass --overwrite" in error_of("make-sample-clip", out)
    assert "size must be even" in error_of(
        "make-sample-clip", tmp_path / "o.mp4", "--size", "95x64"
    )


def test_start_up_counts_from_this_program_not_from_the_shell_that_exec_d_it():
    """A shell runs its last command in place (`bash -c '... && jsnet-edge video ...'`, the
    README's quick start): the process, and its kernel start time, are the shell's. The
    first-frame time must not count what the shell ran before (it read 40 s after a
    `pip install`, for a command of a few seconds)."""
    code = "from jsnet_edge.devices import process_age; print(process_age())"
    out = subprocess.run(
        ["bash", "-c", f"sleep 2 && exec {shlex.quote(sys.executable)} -c {shlex.quote(code)}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert 0 <= float(out) < 1.0, out
