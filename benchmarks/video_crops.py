"""The README's picture of real-video denoising: one frame of a benchmark clip (a pan over a
test photograph, noise, then H.264 4:2:0 as a camera stores it; `video_peers.py` makes it),
cropped: clean, noisy, `jsnet-edge video --task denoise`, the previous Gaussian-trained
model, and ffmpeg's nlmeans at its best strength on that clip (from video_peers' run).
Every output is written losslessly, so only the denoisers differ.

    python benchmarks/video_crops.py --test data/test --old runs/old/denoise-rt.safetensors \\
        --out docs/images/video-denoise.png
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from jsnet_edge.images import list_images
from jsnet_edge.metrics import psnr
from jsnet_edge.outputs import write_bytes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from video_peers import make_clip, read_frames, run_ffmpeg, run_ours  # noqa: E402

SPEC = {"b": ("gaussian", "18"), "c": ("camera", "23")}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--test", type=Path, default=Path("data/test"))
    ap.add_argument("--clip", default="b", choices=sorted(SPEC))
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--nlmeans", default="nlmeans=s=8", help="its best strength on the clip")
    ap.add_argument("--old", default=None, help="a previous model file, for a before column")
    ap.add_argument("--frame", type=int, default=10)
    ap.add_argument("--crop", default="200x150+300+110", help="WxH+X+Y in the frame")
    ap.add_argument("--out", type=Path, default=Path("docs/images/video-denoise.png"))
    args = ap.parse_args(argv)
    size = tuple(int(v) for v in args.size.split("x"))
    name = f"{args.clip}-{args.size}"
    photos = list_images(args.test)
    photo = photos[(len(name) * 7) % len(photos)]  # the photograph video_peers uses
    n = args.frame + 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = make_clip(tmp, name, photo, size, n, *SPEC[args.clip])
        panels = [("clean", clip.clean[args.frame]), ("noisy", read_frames(clip.path)[-1])]
        ours = tmp / "ours.mkv"
        run_ours(clip, "task", ours, ["--codec", "ffv1"])
        panels.append(("jsnet-edge (denoise-rt)", read_frames(ours)[args.frame]))
        if args.old:
            old = tmp / "old.mkv"
            run_ours(clip, args.old, old, ["--codec", "ffv1"])
            panels.append(("before (Gaussian-trained)", read_frames(old)[args.frame]))
        nl = tmp / "nl.mkv"
        run_ffmpeg(clip, args.nlmeans, nl, 2, n)
        panels.append((f"ffmpeg {args.nlmeans}", read_frames(nl)[args.frame]))
    wh, _, xy = args.crop.partition("+")
    w, h = (int(v) for v in wh.split("x"))
    x, y = (int(v) for v in xy.split("+"))
    clean = clip.clean[args.frame]
    tiles = []
    for label, frame in panels:
        text = label if label == "clean" else f"{label}: {psnr(frame, clean, mode='rgb'):.2f} dB"
        tile = np.ascontiguousarray(frame[y : y + h, x : x + w])
        tile = cv2.resize(tile, (2 * w, 2 * h), interpolation=cv2.INTER_NEAREST)
        cv2.rectangle(tile, (0, 0), (2 * w, 18), (0, 0, 0), -1)
        cv2.putText(tile, text, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1)
        tiles.append(tile)
        print(text)
    _, data = cv2.imencode(".png", cv2.cvtColor(np.concatenate(tiles, 1), cv2.COLOR_RGB2BGR))
    write_bytes(args.out, data.tobytes())
    print(f"wrote {args.out} ({clip.name}, {photo.name}, frame {args.frame}, PSNR of the frame)")


if __name__ == "__main__":
    main()
