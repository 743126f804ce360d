"""`jsnet-edge video` against what a user would pick instead: ffmpeg's denoise filters.

Clips are made here from test photographs that share no source with the training data
(benchmarks/data/README.md): a slow pan over a photograph, noise, then stored as a camera
would store it:
  a  Gaussian noise sigma 20, lossless 4:4:4 (FFV1)
  b  Gaussian noise sigma 20, then H.264 CRF 18, 4:2:0
  c  camera noise (Poisson-Gaussian: gain 2, read noise 6), then H.264 CRF 23, 4:2:0
at 640x360 and 1280x720. Each method restores each clip; every output is written
losslessly (FFV1, RGB) so that only the denoiser is judged, and `jsnet-edge video` also
writes its default output (what users get). PSNR (RGB, 8-bit) against the clean frames;
speed is the whole command's wall time (start-up included), on the cores given.

ffmpeg comes from the system: `apt-get install ffmpeg` (Debian/Ubuntu).

    python benchmarks/video_peers.py --test data/test \\
        --json benchmarks/results/video_peers_dev_cpu.json --plot docs/images/video-peers.png
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from jsnet_edge.degradations import add_gaussian_noise, add_poisson_gaussian_noise
from jsnet_edge.images import list_images, load_image
from jsnet_edge.metrics import psnr
from jsnet_edge.outputs import write_json
from jsnet_edge.video.sample import clean_frames

FFMPEG_FILTERS = {
    "hqdn3d": ["hqdn3d=4:3:6:4.5", "hqdn3d=8:6:12:9", "hqdn3d=16:12:24:18"],
    "atadenoise": ["atadenoise", "atadenoise=0a=0.08:0b=0.16:1a=0.08:1b=0.16:2a=0.08:2b=0.16"],
    "vaguedenoiser": ["vaguedenoiser=threshold=4", "vaguedenoiser=threshold=8"],
    "nlmeans": [f"nlmeans=s={s}" for s in (4, 6, 8, 10, 12, 15)],
}


@dataclass(frozen=True)
class Clip:
    name: str
    path: Path
    clean: np.ndarray  # frames x H x W x 3, RGB uint8


def make_clip(folder: Path, name: str, photo: Path, size, frames: int, noise: str, store: str):
    """Clean frames of a pan over `photo` (RGB), degraded, written as `store` says."""
    import av

    rng = np.random.default_rng(0)
    img = load_image(photo)  # RGB
    clean = np.stack([f[:, :, ::-1] for f in clean_frames(frames, size, img[:, :, ::-1])])
    path = folder / f"{name}.{'mkv' if store == 'lossless' else 'mp4'}"
    with av.open(str(path), "w") as out:
        codec, opts = ("ffv1", {}) if store == "lossless" else ("libx264", {"crf": store})
        v = out.add_stream(codec, rate=Fraction(25), options=opts)
        v.width, v.height = size
        v.pix_fmt = "bgr0" if store == "lossless" else "yuv420p"
        for i, frame in enumerate(clean):
            if noise == "gaussian":
                noisy = add_gaussian_noise(frame, 20.0, rng=rng, clip=True)
            else:
                noisy = add_poisson_gaussian_noise(frame, 2.0, 6.0, rng=rng)
            f = av.VideoFrame.from_ndarray((noisy + 0.5).astype(np.uint8), format="rgb24")
            f.pts = i
            out.mux(v.encode(f))
        out.mux(v.encode(None))
    return Clip(name, path, clean)


def read_frames(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def score(path: Path, clip: Clip) -> float:
    got = read_frames(path)
    n = min(len(got), len(clip.clean))
    return float(np.mean([psnr(got[i], clip.clean[i], mode="rgb") for i in range(n)]))


def timed(cmd: list[str], env=None) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed: {proc.stderr[-400:]}")
    return time.perf_counter() - t


def run_ffmpeg(clip: Clip, flt: str, out: Path, threads: int, frames: int) -> float:
    cmd = [
        "ffmpeg",
        "-y",
        "-loglevel",
        "error",
        "-threads",
        str(threads),
        "-filter_threads",
        str(threads),
        "-i",
        str(clip.path),
        "-frames:v",
        str(frames),
        "-vf",
        flt,
        "-c:v",
        "ffv1",
        "-pix_fmt",
        "bgr0",
        str(out),
    ]
    return timed(cmd)


def run_ours(clip: Clip, model: str, out: Path, extra: list[str]) -> float:
    """`jsnet-edge video` on the clip: `model` "task" is `--task denoise` (what a user gets:
    the zoo picks the model for the frame size), else `--model MODEL`."""
    pick = ["--task", "denoise"] if model == "task" else ["--model", model]
    cmd = [
        sys.executable,
        "-m",
        "jsnet_edge",
        "video",
        str(clip.path),
        "-o",
        str(out),
        *pick,
        "--no-progress",
        *extra,
    ]
    return timed(cmd)


def parse_models(text: str) -> list[tuple[str, str, bool]]:
    """Parse "task,denoise-rt,old=runs/old/denoise-rt.safetensors,denoise:slow" ->
    (label, model, slow) triples; slow models restore --slow-frames frames only."""
    out = []
    for item in text.split(","):
        slow = item.endswith(":slow")
        item = item.removesuffix(":slow")
        label, _, model = item.rpartition("=")
        out.append((label or model, model, slow))
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--test", type=Path, default=Path("data/test"))
    ap.add_argument("--sizes", default="640x360,1280x720")
    ap.add_argument("--clips", default="a,b,c")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument(
        "--slow-frames",
        type=int,
        default=24,
        help="frames for methods slower than 5 fps (nlmeans at 720p): PSNR and "
        "fps over the first N frames",
    )
    ap.add_argument(
        "--models",
        default="task,denoise-rt,denoise:slow",
        help="comma-separated: task (--task denoise), zoo names or model files, each "
        "optionally LABEL=MODEL and :slow (only --slow-frames frames)",
    )
    ap.add_argument("--filters", default=",".join(FFMPEG_FILTERS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path)
    args = ap.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg is not installed: apt-get install ffmpeg")
    photos = list_images(args.test)
    if not photos:
        raise SystemExit(f"no photographs in {args.test}: bash benchmarks/data/test-photos.sh")
    spec = {"a": ("gaussian", "lossless"), "b": ("gaussian", "18"), "c": ("camera", "23")}
    result = {"frames": args.frames, "threads": args.threads, "clips": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for size_text in args.sizes.split(","):
            size = tuple(int(v) for v in size_text.split("x"))
            for key in args.clips.split(","):
                noise, store = spec[key]
                name = f"{key}-{size_text}"
                photo = photos[(len(name) * 7) % len(photos)]
                clip = make_clip(tmp, name, photo, size, args.frames, noise, store)
                noisy = float(
                    np.mean(
                        [
                            psnr(a, b, mode="rgb")
                            for a, b in zip(read_frames(clip.path), clip.clean, strict=True)
                        ]
                    )
                )
                rows = {"noisy input": {"psnr": noisy, "fps": None}}
                print(f"{name} ({photo.name}): noisy {noisy:.2f} dB", flush=True)
                for label, model, slow in parse_models(args.models):
                    n = min(args.slow_frames, args.frames) if slow else args.frames
                    limit = ["--max-frames", str(n)] if n < args.frames else []
                    out = tmp / f"{name}-{len(rows)}.mkv"
                    s = run_ours(clip, model, out, ["--codec", "ffv1", *limit])
                    key = f"jsnet-edge {label}"
                    rows[key] = {"psnr": score(out, clip), "fps": n / s, "frames": n}
                    keys = [key]
                    if not slow:  # as users get it: the default codec (H.264, CRF 18)
                        out2 = tmp / f"{name}-{len(rows)}-default.mp4"
                        s2 = run_ours(clip, model, out2, [])
                        rows[f"{key} (default output)"] = {
                            "psnr": score(out2, clip),
                            "fps": n / s2,
                            "frames": n,
                        }
                        keys.append(f"{key} (default output)")
                    if model == "task":  # what players that decode only 4:2:0 get
                        out3 = tmp / f"{name}-{len(rows)}-420.mp4"
                        s3 = run_ours(clip, model, out3, ["--chroma", "420"])
                        rows[f"{key} (--chroma 420)"] = {
                            "psnr": score(out3, clip),
                            "fps": n / s3,
                            "frames": n,
                        }
                        keys.append(f"{key} (--chroma 420)")
                    for k in keys:
                        print(
                            f"  {k:<44} {rows[k]['psnr']:6.2f} dB {rows[k]['fps']:6.1f} fps",
                            flush=True,
                        )
                for family in args.filters.split(","):
                    for flt in FFMPEG_FILTERS[family]:
                        out = tmp / f"{name}-{family}.mkv"
                        # A probe on --slow-frames first: a filter slower than 5 fps
                        # (nlmeans) is judged on those frames, the others on all.
                        n = min(args.slow_frames, args.frames)
                        s = run_ffmpeg(clip, flt, out, args.threads, n)
                        if n / s >= 5 and n < args.frames:
                            n = args.frames
                            s = run_ffmpeg(clip, flt, out, args.threads, n)
                        rows[f"ffmpeg {flt}"] = {
                            "psnr": score(out, clip),
                            "fps": n / s,
                            "frames": n,
                        }
                        print(
                            f"  {'ffmpeg ' + flt:<44} {rows['ffmpeg ' + flt]['psnr']:6.2f} dB "
                            f"{n / s:6.1f} fps",
                            flush=True,
                        )
                result["clips"][name] = {
                    "photo": photo.name,
                    "noise": noise,
                    "store": store,
                    "rows": rows,
                }
                if args.json:
                    write_json(args.json, result)
    if args.plot:
        plot(result, args.plot)
    return result


def plot(result: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    from jsnet_edge.outputs import atomic_output

    clips = list(result["clips"])
    fig = Figure(figsize=(4.2 * len(clips), 3.8), layout="constrained")
    for i, name in enumerate(clips):
        ax = fig.add_subplot(1, len(clips), i + 1)
        for label, r in result["clips"][name]["rows"].items():
            if r["fps"] is None:
                ax.axhline(r["psnr"], color="gray", linestyle=":", label="noisy input")
                continue
            ours = label.startswith("jsnet-edge")
            ax.scatter(
                r["fps"],
                r["psnr"],
                marker="o" if ours else "x",
                color="tab:blue" if ours else "tab:red",
                s=30,
            )
            if ours or "nlmeans" in label:
                ax.annotate(
                    label.replace("jsnet-edge ", "").replace("ffmpeg ", ""),
                    (r["fps"], r["psnr"]),
                    fontsize=6,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
        ax.set_xscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("fps, whole command (2 cores)")
        ax.set_ylabel("PSNR vs clean (dB)")
        ax.grid(alpha=0.3)
    with atomic_output(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")


if __name__ == "__main__":
    main()
