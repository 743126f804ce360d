"""Does a recurrent network use the frames before? Per-frame PSNR on moving clips.

Clips are made as training makes them (`jsnet_edge.train.clips`: pans, moving objects,
still shots; one degradation per clip, fresh noise per frame), here from test photographs
that share no source with the training data, and each network runs them as the video
path does (`run_batch`: the previous restored frame moved by the camera's motion, as
estimated from the noisy frames). A recurrent network is also run on each frame alone
(its previous frame = the frame itself), which shows what the recurrence adds and what the
single frame lost. PSNR (RGB, pooled over the clips) per frame index.

    python benchmarks/recurrent.py --test data/test \\
        --models denoise-rt,rec=runs/rec/denoise-rt-rec.safetensors \\
        --json benchmarks/results/recurrent_dev_cpu.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from jsnet_edge.degradations import Degradation
from jsnet_edge.metrics import psnr
from jsnet_edge.models.resolve import resolve_model
from jsnet_edge.outputs import write_json
from jsnet_edge.train.clips import ClipSampler, run_batch


def psnr_per_frame(pred: torch.Tensor, target: torch.Tensor) -> list[float]:
    """PSNR of each frame index over all the clips (N x T x C x H x W, as 8-bit frames)."""
    out = []
    for k in range(pred.shape[1]):
        a, b = (t[:, k].permute(0, 2, 3, 1).numpy() for t in (pred.clamp(0, 255).round(), target))
        out.append(psnr(a.reshape(-1, *a.shape[2:]), b.reshape(-1, *b.shape[2:]), mode="rgb"))
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--test", type=Path, default=Path("data/test"))
    ap.add_argument("--models", default="denoise-rt")
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    noises = {
        "gaussian sigma 20": Degradation("denoise", sigma=(20.0, 20.0)),
        "camera (blind)": Degradation("denoise", sigma=(0.0, 50.0), noise="camera"),
    }
    result = {"clips": args.clips, "frames": args.frames, "patch": args.patch, "rows": {}}
    for noise, deg in noises.items():
        sampler = ClipSampler(args.test, deg, 3, args.patch, frames=args.frames, seed=11)
        x, y = (torch.from_numpy(a) for a in sampler.batch_at(0, args.clips))
        rows = {"noisy input": psnr_per_frame(x, y)}
        for item in args.models.split(","):
            label, _, spec = item.rpartition("=")
            net = resolve_model(spec).eval()
            with torch.no_grad():
                rows[label or spec] = psnr_per_frame(run_batch(net, x), y)
                if net.genotype.recurrent:
                    alone = torch.stack([net(x[:, k]) for k in range(x.shape[1])], 1)
                    rows[f"{label or spec} (each frame alone)"] = psnr_per_frame(alone, y)
        print(f"{noise}: PSNR per frame (dB); mean of frames 2..{args.frames}")
        for label, values in rows.items():
            cells = " ".join(f"{v:6.2f}" for v in values)
            print(f"  {label:<36} {cells}   {np.mean(values[1:]):6.2f}")
        result["rows"][noise] = rows
    if args.json:
        write_json(args.json, result, overwrite=True)
    return result


if __name__ == "__main__":
    main()
