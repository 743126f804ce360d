"""Real time on the CPU, end to end (issue 7): the rt models of the zoo beside the full-size
zoo models, the authors' network and the classic baselines, in one run.

For each task (colour denoising at sigma 25, super-resolution x2):
1. video: `jsnet_edge.video.process` (what `jsnet-edge video` runs) on a generated 640x360
   clip, automatic backend (OpenVINO where installed), bf16 where the CPU has it: pipeline
   fps, decode + inference + encode (target >= 25 fps for the rt models);
2. latency: median time of one 640x360 frame (the network input; an SR output is 1280x720)
   for every method, baselines included, on the same CPU;
3. quality: mean PSNR on photographs never used in training (those of benchmarks/quality.py).
Targets: denoise-rt >= OpenCV fastNlMeansDenoisingColored + 1 dB and >= 10x its speed;
sr-x2-rt >= bicubic + 1.5 dB. It prints a table, writes JSON and the Pareto picture
(latency against PSNR).

    python benchmarks/realtime.py --json benchmarks/results/realtime_dev_cpu.json \
        --plot docs/images/realtime-pareto.png

Pause other jobs while it runs: timings of a shared CPU are inflated and noisy.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import NLM_SWEEP, SIGMA, test_photos, to_uint8  # noqa: E402  (same photographs)

from jsnet_edge.degradations import add_gaussian_noise, bicubic_downscale, imresize, modcrop
from jsnet_edge.devices import cpu_model
from jsnet_edge.metrics import psnr
from jsnet_edge.outputs import write_json
from jsnet_edge.restorer import Restorer
from jsnet_edge.runtime.timing import TimingMethod, time_call
from jsnet_edge.video.config import VideoConfig
from jsnet_edge.video.pipeline import process
from jsnet_edge.video.sample import make_sample_clip

FRAME = (640, 360)


def median_ms(fn: Callable[[np.ndarray], object], frame: np.ndarray, repeats: int) -> float:
    """One warm-up (compilation, shape caches), then `repeats` calls (`time_call`)."""
    method = TimingMethod(
        warmup=1, repeats=repeats, min_repeats=repeats, min_seconds=0.0, max_seconds=600.0
    )
    return time_call(lambda: fn(frame), method).ms


def frame_640x360(task: str) -> np.ndarray:
    """A 640x360 network input made from a photograph (noisy for denoising)."""
    from skimage import data

    img = cv2.resize(data.astronaut(), (640, 640), interpolation=cv2.INTER_AREA)[140:500]
    return to_uint8(add_gaussian_noise(img, SIGMA, seed=0)) if task == "denoise" else img


def quality(task: str, fn: Callable[[np.ndarray], np.ndarray], photos) -> float:
    """Mean PSNR (RGB for denoising, Y with the SR shave for x2) of a method taking and
    returning RGB uint8."""
    scores = []
    for i, (_, img) in enumerate(photos):
        if task == "denoise":
            noisy = to_uint8(add_gaussian_noise(img, SIGMA, seed=i))
            scores.append(psnr(fn(noisy), img, mode="rgb"))
        else:
            hr = modcrop(img, 2)
            lr = np.clip(np.round(bicubic_downscale(hr, 2)), 0, 255).astype(np.uint8)
            scores.append(psnr(fn(lr), hr, shave=2, mode="y"))
    return float(np.mean(scores))


def nlmeans(h: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: cv2.fastNlMeansDenoisingColored(x, None, h, h, 7, 21)


def bicubic(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(imresize(x, 2)), 0, 255).astype(np.uint8)


def video_fps(restorer: Restorer, task: str, frames: int, tmp: Path, rounds: int) -> dict:
    """Median pipeline fps of `rounds` runs (a shared machine has slow spells)."""
    clip = make_sample_clip(
        tmp / f"{task}.mp4", frames=frames, size=FRAME, sigma=SIGMA if task == "denoise" else 0.0
    ).path
    runs = [
        process(clip, tmp / f"{task}-out.mp4", restorer, VideoConfig(overwrite=True))
        for _ in range(rounds)
    ]
    fps = [r.pipeline_fps for r in runs]
    mid = runs[fps.index(statistics.median_low(fps))]
    return {
        "frames": mid.frames,
        "pipeline_fps": statistics.median(fps),
        "runs_fps": fps,
        "latency_ms": mid.latency_ms,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default="denoise,sr-x2")
    ap.add_argument("--backend", default="auto")
    ap.add_argument(
        "--precision",
        default=None,
        help="default: bf16 where OpenVINO runs it on this CPU, else fp32",
    )
    ap.add_argument("--official", type=Path, default=Path("../shared/official"))
    ap.add_argument(
        "--val",
        type=Path,
        default=Path("data/val"),
        help="held-out photographs added to scikit-image's (if present)",
    )
    ap.add_argument("--crop", type=int, default=384)
    ap.add_argument("--frames", type=int, default=100, help="frames of the video test")
    ap.add_argument("--repeats", type=int, default=20, help="timed runs per latency")
    ap.add_argument("--rounds", type=int, default=3, help="video runs per rt model (median)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path, help="write the Pareto picture (PNG) here")
    args = ap.parse_args(argv)
    photos = test_photos(args.val, args.crop)
    if args.precision is None:
        from jsnet_edge.runtime.openvino_backend import runs_bf16

        args.precision = "bf16" if runs_bf16() else "fp32"
    opts = {"backend": args.backend, "precision": args.precision, "tile": 640}

    from jsnet_edge.zoo import ZOO

    results: dict = {"frame": list(FRAME), "photos": [n for n, _ in photos], "tasks": {}}
    with tempfile.TemporaryDirectory(prefix="jsnet-realtime-") as tmpdir:
        tmp = Path(tmpdir)
        for task in args.tasks.split(","):
            rows: list[dict] = []
            frame = frame_640x360(task)

            def add(
                method: str,
                fn,
                kind: str,
                restorer: Restorer | None = None,
                task: str = task,
                frame: np.ndarray = frame,
                rows: list = rows,
                timed=None,
            ) -> dict:
                row = {
                    "method": method,
                    "kind": kind,
                    "latency_ms": median_ms(timed or fn, frame, args.repeats),
                    "psnr": quality(task, fn, photos),
                }
                if restorer is not None:
                    row["backend"] = restorer.describe()
                rows.append(row)
                print(
                    f"  {method:<22} {row['latency_ms']:9.1f} ms  {row['psnr']:6.2f} dB", flush=True
                )
                return row

            print(f"{task}: 640x360 input", flush=True)
            models = [(f"{task}-rt", "rt"), (task, "zoo")]
            for name, kind in models:
                if name not in ZOO or not ZOO[name].path.is_file():
                    print(f"  {name}: not in the zoo, skipped")
                    continue
                r = Restorer(name, color_order="rgb", **opts)
                row = add(name, lambda x, r=r: r(x), kind, r)
                if kind == "rt":
                    r_bgr = Restorer(name, **opts)  # frames as `jsnet-edge video` gives them
                    row["video"] = video_fps(r_bgr, task, args.frames, tmp, args.rounds)
                    print(
                        f"    video: {row['video']['pipeline_fps']:.1f} fps end to end", flush=True
                    )
            ckpt = args.official / "jsnet_sr_x2_official.pt"
            if task == "sr-x2" and ckpt.is_file():
                from jsnet_edge.models import load_official

                r = Restorer(load_official(ckpt, 2), color_order="rgb", **opts)
                add("authors' JSNet x2", lambda x, r=r: r(x), "authors", r)
            if task == "denoise":  # the baseline at its best strength on these photographs
                best = max(NLM_SWEEP, key=lambda h: quality(task, nlmeans(h), photos))
                add(f"OpenCV NLMeans (h={best})", nlmeans(best), "classic")
            else:
                # PSNR of MATLAB's bicubic (the SR protocol), time of OpenCV's (what runs).
                add(
                    "bicubic",
                    bicubic,
                    "classic",
                    timed=lambda x: cv2.resize(x, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC),
                )
            results["tasks"][task] = rows

    checks = {}
    den = {r["method"]: r for r in results["tasks"].get("denoise", [])}
    if "denoise-rt" in den:
        rt = den["denoise-rt"]
        nl = next(r for r in den.values() if r["method"].startswith("OpenCV NLMeans"))
        checks["denoise-rt video >= 25 fps"] = rt["video"]["pipeline_fps"] >= 25
        checks["denoise-rt >= NLMeans + 1 dB"] = rt["psnr"] >= nl["psnr"] + 1.0
        checks["denoise-rt >= 10x NLMeans speed"] = nl["latency_ms"] >= 10 * rt["latency_ms"]
    sr = {r["method"]: r for r in results["tasks"].get("sr-x2", [])}
    if "sr-x2-rt" in sr:
        rt, bic = sr["sr-x2-rt"], sr["bicubic"]
        checks["sr-x2-rt video >= 25 fps"] = rt["video"]["pipeline_fps"] >= 25
        checks["sr-x2-rt >= bicubic + 1.5 dB"] = rt["psnr"] >= bic["psnr"] + 1.5
    results["checks"] = checks
    results["machine"] = {
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "os": platform.platform(),
    }

    print("\n| task | method | 640x360 latency (ms) | PSNR (dB) | video fps |")
    print("|---|---|---:|---:|---:|")
    for task, rows in results["tasks"].items():
        for r in rows:
            fps = f"{r['video']['pipeline_fps']:.1f}" if "video" in r else ""
            print(f"| {task} | {r['method']} | {r['latency_ms']:.1f} | {r['psnr']:.2f} | {fps} |")
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    if args.json:
        write_json(args.json, results)
        print(f"wrote {args.json}")
    if args.plot:
        plot(results, args.plot)
        print(f"wrote {args.plot}")
    return results


def plot(results: dict, path: Path) -> None:
    """Latency (log scale) against PSNR, one panel per task."""
    from matplotlib.figure import Figure

    tasks = results["tasks"]
    fig = Figure(figsize=(5.5 * len(tasks), 4.2))
    style = {
        "rt": ("o", "tab:red"),
        "zoo": ("s", "tab:blue"),
        "authors": ("^", "tab:green"),
        "classic": ("x", "black"),
    }
    for i, (task, rows) in enumerate(tasks.items()):
        ax = fig.add_subplot(1, len(tasks), i + 1)
        for r in rows:
            m, c = style[r["kind"]]
            ax.scatter(r["latency_ms"], r["psnr"], marker=m, color=c, s=50)
            # Slow methods sit at the right edge: label them to the left; the authors' network
            # sits next to the zoo's copy of it: label it below.
            left = r["latency_ms"] > 100
            below = r["kind"] == "authors"
            ax.annotate(
                r["method"],
                (r["latency_ms"], r["psnr"]),
                textcoords="offset points",
                xytext=(-6 if left else 5, -12 if below else 4),
                ha="right" if left else "left",
                fontsize=8,
            )
        ax.axvline(40.0, color="grey", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("latency of one 640x360 frame (ms, log)")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title("denoise, sigma 25 (RGB PSNR)" if task == "denoise" else "SR x2 (Y PSNR)")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{results['machine']['cpu']}; dotted line: 25 fps", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1:])
