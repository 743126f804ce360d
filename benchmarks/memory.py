"""Peak memory against image size: `jsnet-edge image` on photographs of 4 to 64 Mpixel and
`jsnet-edge video` on 640x360 and 1280x720 clips, each a fresh process whose peak RSS
(ru_maxrss of the child) is read after it exits.

Tiles stream from the decoded input into a preallocated output, so the peak should grow by
the input and output (3 + 3 bytes a pixel for 8-bit RGB denoising, plus the PNG encoder's
buffers), not by the network's activations (~60 bytes a pixel before the fix).

    python benchmarks/memory.py --json benchmarks/results/memory_dev_cpu.json
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from jsnet_edge.devices import machine_description
from jsnet_edge.outputs import write_json
from jsnet_edge.video.sample import make_sample_clip

SIDES = (2000, 4000, 6000, 8000)  # square images: 4, 16, 36, 64 Mpixel
CLIPS = ((640, 360), (1280, 720))


def child_peak_mb(cmd: list[str]) -> float:
    """Peak RSS of one command, in MB (each command runs in its own `python -c` wrapper so
    that RUSAGE_CHILDREN holds that command alone)."""
    code = (
        "import resource, subprocess, sys;"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "sys.stderr.write(p.stderr[-300:]) if p.returncode else None;"
        "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True)
    rc, kb = out.stdout.split()
    if int(rc):
        raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr}")
    return int(kb) / 1024


def photo(side: int, path: Path) -> Path:
    """A textured `side` x `side` image (noise over gradients: PNG cannot shrink it away)."""
    rng = np.random.default_rng(side)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
    img = np.stack([x * 255, y * 255, (x + y) * 127], axis=2)
    img += rng.normal(0, 20, img.shape).astype(np.float32)
    cv2.imwrite(str(path), np.clip(img, 0, 255).astype(np.uint8))
    return path


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="denoise-rt")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    cli = [sys.executable, "-m", "jsnet_edge"]
    result = {"machine": machine_description("cpu"), "model": args.model, "image": {}, "video": {}}
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this process: {baseline:.0f} MB)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for side in SIDES:
            src = photo(side, tmp / f"in-{side}.png")
            mp = side * side / 1e6
            peak = child_peak_mb(
                [*cli, "image", str(src), "-o", str(tmp / f"out-{side}.png"), "--model", args.model]
            )
            result["image"][f"{side}x{side}"] = {"megapixels": mp, "peak_mb": peak}
            print(f"image {side}x{side} ({mp:5.1f} Mpixel): peak RSS {peak:7.0f} MB", flush=True)
            os.unlink(src)
        mps = [r["megapixels"] for r in result["image"].values()]
        peaks = [r["peak_mb"] for r in result["image"].values()]
        slope, intercept = np.polyfit(mps, peaks, 1)
        result["image_fit"] = {"mb_per_megapixel": slope, "fixed_mb": intercept}
        print(f"image: {intercept:.0f} MB + {slope:.1f} MB per Mpixel ({slope:.1f} bytes/pixel)")
        for w, h in CLIPS:
            clip = make_sample_clip(tmp / f"clip-{w}.mp4", frames=100, size=(w, h)).path
            peak = child_peak_mb(
                [*cli, "video", str(clip), "-o", str(tmp / f"v-{w}.mp4"), "--task", "denoise"]
                + ["--no-progress"]
            )
            result["video"][f"{w}x{h}"] = {"frames": 100, "peak_mb": peak}
            print(f"video {w}x{h}, 100 frames: peak RSS {peak:7.0f} MB", flush=True)
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
