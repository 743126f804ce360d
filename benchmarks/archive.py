"""Archive throughput: one folder of photographs restored here without Ray, and on a local
Ray cluster with 1 and with 2 workers, side by side in one run (the same model, backend
and outputs; each run into a fresh folder).

On a 2-core machine the question is how to split the cores: one worker with both threads,
or two workers with one thread each (each holding its own model). On a real cluster the
same command spreads over every node (docs/deployment.md, "Archives on a Ray cluster").

    python benchmarks/archive.py --images data/test --model denoise-rt \\
        --json benchmarks/results/archive_dev_cpu.json
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from jsnet_edge.devices import machine_description
from jsnet_edge.distributed import ArchiveConfig, expand_inputs, restore_archive
from jsnet_edge.images import load_image
from jsnet_edge.outputs import write_json

SETUPS = (
    # label, Ray address (None: no Ray), workers, threads per worker
    ("no Ray, 2 threads", None, None, 2),
    ("Ray local, 1 worker x 2 threads", "local", 1, 2),
    ("Ray local, 2 workers x 1 thread", "local", 2, 1),
)


def _pixels(path: Path) -> int:
    h, w = load_image(path).shape[:2]
    return h * w


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=Path, default=Path("data/test"))
    ap.add_argument("--model", default="denoise-rt")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    import ray

    files = expand_inputs([args.images], "image")
    megapixels = sum(_pixels(f) / 1e6 for f in files)
    result = {
        "machine": machine_description("cpu"),
        "model": args.model,
        "images": len(files),
        "megapixels": megapixels,
        "runs": {},
    }
    print(f"{len(files)} photographs, {megapixels:.1f} Mpixel, {args.model}")
    for label, address, workers, threads in SETUPS:
        out = Path(tempfile.mkdtemp(prefix="archive-"))
        cfg = ArchiveConfig("image", args.model, backend="auto", threads=threads)
        t = time.perf_counter()  # Ray start-up and model loads included: what a user waits
        summary = restore_archive([args.images], out, cfg, ray_address=address, workers=workers)
        wall = time.perf_counter() - t
        if ray.is_initialized():
            ray.shutdown()
        shutil.rmtree(out)
        assert not summary.failed, summary.failed
        result["runs"][label] = {
            "seconds": wall,
            "images_per_s": len(files) / wall,
            "megapixels_per_s": megapixels / wall,
            "workers": summary.workers,
        }
        print(
            f"  {label:<34} {wall:7.1f} s  {len(files) / wall:6.2f} images/s  "
            f"{megapixels / wall:6.2f} Mpixel/s",
            flush=True,
        )
    base = result["runs"][SETUPS[0][0]]["seconds"]
    for r in result["runs"].values():
        r["speed-up"] = base / r["seconds"]
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
