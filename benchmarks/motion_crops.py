"""The README's picture of a moving scene: one frame of clip (m) of `video_peers.py` (a
pan with three objects moving on their own paths, Gaussian sigma 20, H.264 CRF 18 4:2:0),
cropped around a moving object: clean, noisy, `jsnet-edge video --task denoise` (its
default output, as users get it) and ffmpeg's nlmeans at its best strength. The outputs
are those a `video_peers.py --keep DIR` run left in DIR.

    python benchmarks/motion_crops.py --test data/test --keep /tmp/vp --nlmeans 10 \\
        --out docs/images/video-motion.png
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from video_peers import make_clip, read_frames  # noqa: E402

from jsnet_edge.images import list_images  # noqa: E402
from jsnet_edge.metrics import psnr  # noqa: E402
from jsnet_edge.outputs import write_bytes  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--test", type=Path, default=Path("data/test"))
    ap.add_argument("--keep", type=Path, required=True)
    ap.add_argument(
        "--results", type=Path, default=Path("benchmarks/results/video_hd_deblock_dev_cpu.json")
    )
    ap.add_argument("--clip", default="m-1280x720")
    ap.add_argument("--nlmeans", default="10")
    ap.add_argument("--frame", type=int, default=12)
    ap.add_argument("--crop", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path("docs/images/video-motion.png"))
    args = ap.parse_args()
    entry = json.loads(args.results.read_text())["clips"][args.clip]
    photo = {p.name: p for p in list_images(args.test)}[entry["photo"]]
    size = tuple(int(v) for v in args.clip.split("-")[1].split("x"))
    frames = json.loads(args.results.read_text())["frames"]
    with tempfile.TemporaryDirectory() as tmp:
        moving = make_clip(Path(tmp), "m", photo, size, frames, "gaussian", "18", True)
        still = make_clip(Path(tmp), "s", photo, size, frames, "gaussian", "18", False)
    k = args.frame
    clean = moving.clean[k]
    ys, xs = np.nonzero(np.abs(clean.astype(int) - still.clean[k]).sum(2) > 30)
    c = args.crop
    y0 = int(np.clip(np.median(ys) - c // 2, 0, size[1] - c))
    x0 = int(np.clip(np.median(xs) - c // 2, 0, size[0] - c))
    tiles = [("clean", clean)]
    for label, name in (
        ("noisy", f"{args.clip}.mp4"),
        ("jsnet-edge video --task denoise", f"{args.clip}-jsnet_edge_task__default_output.mp4"),
        (f"ffmpeg nlmeans s={args.nlmeans}", f"{args.clip}-nlmeans_s_{args.nlmeans}.mkv"),
    ):
        tiles.append((label, read_frames(args.keep / name)[k]))
    row = []
    for label, img in tiles:
        crop = np.ascontiguousarray(img[y0 : y0 + c, x0 : x0 + c, ::-1])  # BGR for OpenCV
        text = label if label == "clean" else f"{label}: {psnr(img, clean, mode='y'):.2f} dB"
        cv2.putText(crop, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1)
        row.append(crop)
    ok, png = cv2.imencode(".png", np.concatenate(row, 1))
    write_bytes(args.out, png.tobytes(), overwrite=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
