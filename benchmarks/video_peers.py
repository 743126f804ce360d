"""`jsnet-edge video` against what a user would pick instead: ffmpeg's denoise filters.

Clips are made here from test photographs that share no source with the training data
(benchmarks/data/README.md): a slow pan over a photograph, noise, then stored as a camera
would store it:
  a  Gaussian noise sigma 20, lossless 4:4:4 (FFV1)
  b  Gaussian noise sigma 20, then H.264 CRF 18, 4:2:0
  c  camera noise (Poisson-Gaussian: gain 2, read noise 6), then H.264 CRF 23, 4:2:0
  m  as b, with three objects moving over the pan on their own paths (real motion)
at the --sizes given (640x360, 1280x720, 1920x1080). Each method restores each clip; every
output is written losslessly (FFV1, RGB) so that only the denoiser is judged, and
`jsnet-edge video` also writes its default output (what users get: H.264 4:2:0) and its
`--chroma 444` output. PSNR against the clean frames: RGB, luma (Y) and every sample of
YUV 4:2:0 (the clean frames stored as 4:2:0, as cameras do); speed is the whole command's
wall time (start-up included), on the cores given.

ffmpeg comes from the system: `apt-get install ffmpeg` (Debian/Ubuntu).

    python benchmarks/video_peers.py --test data/test \\
        --json benchmarks/results/video_peers_dev_cpu.json --plot docs/images/video-peers.png
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from jsnet_edge.degradations import add_gaussian_noise, add_poisson_gaussian_noise
from jsnet_edge.devices import machine_description
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


def add_moving_objects(clean: np.ndarray, photo: np.ndarray, rng) -> np.ndarray:
    """Real motion, not only a pan: three objects (discs cut from other parts of the
    photograph, with a dark rim) cross the frame on their own paths and speeds, one of
    them turning, over the panning background."""
    n, h, w = clean.shape[:3]
    out = clean.copy()
    ph, pw = photo.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    for k in range(3):
        r = int(min(h, w) * (0.08 + 0.05 * k))
        side = int(min(ph, pw) * 0.3)  # a large part of the photograph, shrunk to the disc
        sy, sx = int(rng.integers(0, ph - side)), int(rng.integers(0, pw - side))
        patch = cv2.resize(
            photo[sy : sy + side, sx : sx + side], (2 * r, 2 * r), interpolation=cv2.INTER_AREA
        )
        x0, y0 = rng.uniform(0.1, 0.9) * w, rng.uniform(0.2, 0.8) * h
        vx, vy = rng.uniform(-1, 1) * w / n * 0.6, rng.uniform(-1, 1) * h / n * 0.4
        for i in range(n):
            cx = x0 + vx * i + (k == 2) * 0.1 * w * np.sin(i / n * 2 * np.pi)
            cy = y0 + vy * i
            top, left = int(round(cy)) - r, int(round(cx)) - r
            d2 = (yy - cy) ** 2 + (xx - cx) ** 2
            inside = d2 < r * r
            rim = inside & (d2 > (r - max(2, r // 10)) ** 2)
            ys, xs = np.nonzero(inside)
            py, px = np.clip(ys - top, 0, 2 * r - 1), np.clip(xs - left, 0, 2 * r - 1)
            out[i][ys, xs] = patch[py, px]
            out[i][rim] = out[i][rim] // 3
    return out


def make_clip(
    folder: Path,
    name: str,
    photo: Path,
    size,
    frames: int,
    noise: str,
    store: str,
    moving: bool = False,
):
    """Clean frames of a pan over `photo` (RGB), with moving objects if `moving`,
    degraded, written as `store` says."""
    import av

    rng = np.random.default_rng(0)
    img = load_image(photo)  # RGB
    clean = np.stack([f[:, :, ::-1] for f in clean_frames(frames, size, img[:, :, ::-1])])
    if moving:
        clean = add_moving_objects(clean, img, rng)
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


def read_frames(path: Path, fmt: str = "rgb24") -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format=fmt) for f in c.decode(video=0)])


def to_i420(rgb: np.ndarray) -> np.ndarray:
    """An RGB frame as a 4:2:0 camera or encoder stores it (BT.601, limited range; FFmpeg's
    conversion): the planar I420 array, Y rows then U then V."""
    import av

    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()


def read_i420(path: Path) -> list[np.ndarray]:
    """Each frame as I420: a 4:2:0 file's own planes; any other (RGB, 4:4:4) converted
    from its RGB exactly as the clean reference is (`to_i420`), whatever range or matrix
    its tags claim (ffmpeg tags its RGB output full-range, which FFmpeg's scaler would
    otherwise carry into full-range YUV)."""
    import av

    with av.open(str(path)) as c:
        return [
            f.to_ndarray() if f.format.name == "yuv420p" else to_i420(f.to_ndarray(format="rgb24"))
            for f in c.decode(video=0)
        ]


def score(path: Path, clip: Clip) -> dict[str, float]:
    """PSNR against the clean frames, three ways: RGB (what `--chroma 444` keeps), luma
    (where the eye looks), and YUV 4:2:0 (every sample of the I420 frame) against the
    clean frames stored as 4:2:0, as a camera would: the layout users watch."""
    rgb, yuv = read_frames(path), read_i420(path)
    n = min(len(rgb), len(clip.clean))
    h = clip.clean.shape[1]
    r, y, v, t = [], [], [], []
    last = None
    for i in range(n):
        ref = to_i420(clip.clean[i])
        r.append(psnr(rgb[i], clip.clean[i], mode="rgb"))
        y.append(psnr(yuv[i][:h], ref[:h], mode="rgb"))
        v.append(psnr(yuv[i], ref, mode="rgb"))
        luma = (yuv[i][:h].astype(np.float64), ref[:h].astype(np.float64))
        if last is not None:  # how each frame changes from the one before, against the clean
            t.append(psnr(luma[0] - last[0], luma[1] - last[1], mode="rgb"))
        last = luma
    return {
        "psnr": float(np.mean(r)),
        "psnr_y": float(np.mean(y)),
        "psnr_yuv420": float(np.mean(v)),
        # temporal consistency: PSNR of the frame-to-frame change of luma against the clean
        # video's (flicker and ghosting both lower it; a still error does not)
        "tpsnr_y": float(np.mean(t)) if t else float("nan"),
    }


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")


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
    ap.add_argument(
        "--nlmeans", default="4,6,8,10,12,15", help="nlmeans strengths s to try (the best is kept)"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path)
    ap.add_argument(
        "--keep", type=Path, help="keep the clips and outputs in this folder (for pictures)"
    )
    ap.add_argument(
        "--rescore",
        action="store_true",
        help="score again the outputs kept in --keep by an earlier run with this --json "
        "(speeds kept): for a change of the scoring alone",
    )
    args = ap.parse_args(argv)
    FFMPEG_FILTERS["nlmeans"] = [f"nlmeans=s={v}" for v in args.nlmeans.split(",")]
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg is not installed: apt-get install ffmpeg")
    photos = list_images(args.test)
    if not photos:
        raise SystemExit(f"no photographs in {args.test}: bash benchmarks/data/test-photos.sh")
    if args.rescore:
        return rescore(args)
    spec = SPEC
    result = {
        "machine": machine_description("cpu"),
        "frames": args.frames,
        "threads": args.threads,
        "clips": {},
    }

    def show(label: str, row: dict) -> None:
        fps = "" if row["fps"] is None else f"{row['fps']:6.1f} fps"
        print(
            f"  {label:<44} {row['psnr']:6.2f} dB RGB {row['psnr_y']:6.2f} Y "
            f"{row['psnr_yuv420']:6.2f} YUV420 {row.get('tpsnr_y', float('nan')):6.2f} tY {fps}",
            flush=True,
        )

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            tmp = args.keep
        for size_text in args.sizes.split(","):
            size = tuple(int(v) for v in size_text.split("x"))
            for key in args.clips.split(","):
                noise, store, moving = spec[key]
                name = f"{key}-{size_text}"
                photo = photos[(len(name) * 7) % len(photos)]
                clip = make_clip(tmp, name, photo, size, args.frames, noise, store, moving)
                rows = {"noisy input": {**score(clip.path, clip), "fps": None}}
                print(f"{name} ({photo.name}):", flush=True)
                show("noisy input", rows["noisy input"])
                for label, model, slow in parse_models(args.models):
                    n = min(args.slow_frames, args.frames) if slow else args.frames
                    limit = ["--max-frames", str(n)] if n < args.frames else []
                    key = f"jsnet-edge {label}"
                    runs = [(key, ["--codec", "ffv1", *limit], "mkv")]
                    if not slow:  # as users get it: the default output (H.264 4:2:0)
                        runs.append((f"{key} (default output)", [], "mp4"))
                    if model == "task" and not slow:  # full colour, for software players
                        runs.append((f"{key} (--chroma 444)", ["--chroma", "444"], "mp4"))
                    for row_key, extra, ext in runs:
                        out = tmp / f"{name}-{slug(row_key)}.{ext}"
                        secs = run_ours(clip, model, out, extra)
                        rows[row_key] = {**score(out, clip), "fps": n / secs, "frames": n}
                        show(row_key, rows[row_key])
                for family in filter(None, args.filters.split(",")):
                    for flt in FFMPEG_FILTERS[family]:
                        out = tmp / f"{name}-{slug(flt)}.mkv"
                        # A probe on --slow-frames first: a filter slower than 5 fps
                        # (nlmeans) is judged on those frames, the others on all.
                        n = min(args.slow_frames, args.frames)
                        s = run_ffmpeg(clip, flt, out, args.threads, n)
                        if n / s >= 5 and n < args.frames:
                            n = args.frames
                            s = run_ffmpeg(clip, flt, out, args.threads, n)
                        rows[f"ffmpeg {flt}"] = {**score(out, clip), "fps": n / s, "frames": n}
                        show(f"ffmpeg {flt}", rows[f"ffmpeg {flt}"])
                result["clips"][name] = {
                    "photo": photo.name,
                    "noise": noise,
                    "store": store,
                    "moving_objects": moving,
                    "rows": rows,
                }
                if args.json:
                    write_json(args.json, result)
    if args.plot:
        plot(result, args.plot)
    return result


SPEC = {  # clip: noise, storage, moving objects
    "a": ("gaussian", "lossless", False),
    "b": ("gaussian", "18", False),
    "c": ("camera", "23", False),
    "m": ("gaussian", "18", True),
}


def rescore(args) -> dict:
    result = json.loads(args.json.read_text())
    photos = {p.name: p for p in list_images(args.test)}
    with tempfile.TemporaryDirectory() as tmp:
        for name, entry in result["clips"].items():
            key, size_text = name.split("-")
            size = tuple(int(v) for v in size_text.split("x"))
            noise, store, moving = SPEC[key]
            clip = make_clip(
                Path(tmp),
                name,
                photos[entry["photo"]],
                size,
                result["frames"],
                noise,
                store,
                moving,
            )
            for label, row in entry["rows"].items():
                if row["fps"] is None:
                    row.update(score(clip.path, clip))
                    continue
                stem = label.removeprefix("ffmpeg ") if label.startswith("ffmpeg") else label
                found = list(args.keep.glob(f"{name}-{slug(stem)}.*"))
                if len(found) != 1:
                    raise SystemExit(f"no single kept output for {name} {label}: {found}")
                row.update(score(found[0], clip))
                print(
                    f"{name} {label}: {row['psnr']:.2f} RGB {row['psnr_y']:.2f} Y "
                    f"{row['psnr_yuv420']:.2f} YUV420",
                    flush=True,
                )
    write_json(args.json, result)
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
