"""Video pipeline overhead: the backend's pure inference fps beside the full pipeline's fps
(decode + restore + encode through `jsnet_edge.video.process`), on the same frames, in one
run.

The pipeline overlaps its three stages in threads, so on a machine where restoration is the
bottleneck it should reach the pure inference rate (target: >= 90%); the ratio shows what
decoding, encoding, queueing and remuxing cost on top.

    python benchmarks/video.py --task denoise --frames 100 --size 640x360 --json video.json

The clip is generated (`jsnet_edge.video.sample`: a pan over a bundled photo, sigma-25
noise, a sine-tone track), so nothing needs downloading.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

from jsnet_edge.outputs import write_json
from jsnet_edge.restorer import Restorer, restore_frames
from jsnet_edge.video.config import VideoConfig
from jsnet_edge.video.pipeline import process
from jsnet_edge.video.sample import make_sample_clip, parse_size


def pure_inference_fps(restorer: Restorer, frames: list, batch: int) -> float:
    """Frames per second of the restorer alone, called in a loop on decoded frames."""
    t = time.perf_counter()
    for i in range(0, len(frames), batch):
        restore_frames(restorer, frames[i : i + batch], color_order="bgr")
    return len(frames) / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="model file or zoo name (default: the task's zoo model)")
    ap.add_argument("--task", default="denoise", help="picks the zoo model when no --model")
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default=None)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--size", default="640x360", help="WxH of the generated clip")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--codec", default=None, help="output codec (default: mp4v)")
    ap.add_argument("--tile", type=int, default=640, help="as `jsnet-edge video`")
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="alternate pure/pipeline runs this many times; medians reported",
    )
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)

    if args.model is None:
        from jsnet_edge.zoo import default_model_for

        args.model = default_model_for(args.task)
    size = parse_size(args.size)
    restorer = Restorer(
        args.model,
        backend=args.backend,
        device=args.device,
        precision=args.precision,
        tile=args.tile,
    )
    with tempfile.TemporaryDirectory(prefix="jsnet-video-bench-") as tmp:
        clip = make_sample_clip(Path(tmp) / "clip.mp4", frames=args.frames, size=size).path
        cap = cv2.VideoCapture(str(clip))
        frames = []
        while True:
            ok, f = cap.read()
            if not ok:
                break
            frames.append(f)
        cap.release()
        restore_frames(restorer, frames[: max(2, args.batch)], color_order="bgr")  # warm-up
        pure, pipe, wall = [], [], []
        for r in range(args.repeat):
            pure.append(pure_inference_fps(restorer, frames, args.batch))
            stats = process(
                clip,
                Path(tmp) / f"out{r}.mp4",
                restorer,
                VideoConfig(batch=args.batch, codec=args.codec),
            )
            pipe.append(stats.pipeline_fps)
            wall.append(stats.wall_s)
    p_fps, v_fps = statistics.median(pure), statistics.median(pipe)
    result = {
        "model": str(args.model),
        "task": restorer.task,
        "backend": restorer.backend.name,
        "device": restorer.backend.device,
        "precision": restorer.backend.precision,
        "frames": len(frames),
        "size": list(size),
        "batch": args.batch,
        "codec": stats.codec,
        "pure_inference_fps": p_fps,
        "pipeline_fps": v_fps,
        "ratio": v_fps / p_fps,
        "pipeline_wall_s": statistics.median(wall),
        "latency_ms": stats.latency_ms,
        "runs": {"pure_inference_fps": pure, "pipeline_fps": pipe},
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor(),
            "os": platform.platform(),
        },
    }
    w, h = size
    print(
        f"{restorer.task} on {restorer.backend.name}/{restorer.backend.device}/"
        f"{restorer.backend.precision}, {len(frames)} frames of {w}x{h}, batch {args.batch}"
    )
    print(f"{'measure':<34}{'fps':>9}{'ms/frame':>10}")
    print(f"{'pure inference (restorer loop)':<34}{p_fps:>9.2f}{1000 / p_fps:>10.1f}")
    print(f"{'pipeline (decode+infer+encode)':<34}{v_fps:>9.2f}{1000 / v_fps:>10.1f}")
    print(f"{'pipeline / pure inference':<34}{100 * v_fps / p_fps:>8.1f}%")
    for stage, s in stats.latency_ms.items():
        print(f"  {stage:<12} p50 {s['p50']:8.1f} ms   p99 {s['p99']:8.1f} ms")
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
