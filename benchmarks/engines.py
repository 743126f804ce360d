"""TensorRT engines built ahead of time without a GPU (TensorRT for RTX): build time and
engine size for every zoo model and precision, with the default `build-engine` options
(profile 64x64 .. 640x360 .. 1920x1088, the builder's own compute capabilities), and
each stage's check against torch fp32.

    pip install -e ".[tensorrt-rtx]"
    python benchmarks/engines.py --json benchmarks/results/engines_dev_cpu.json

Nothing here runs an engine: that needs an NVIDIA GPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from jsnet_edge.devices import machine_description
from jsnet_edge.engine import EngineConfig, build_engine_for
from jsnet_edge.export.tensorrt import import_tensorrt
from jsnet_edge.outputs import write_json
from jsnet_edge.zoo import ZOO

INT8 = ("denoise-rt", "sr-x2-rt", "sr-x2")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(ZOO), help="zoo names, comma-separated")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    trt = import_tensorrt()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            for precision in ("fp32", "fp16") + (("int8",) if name in INT8 else ()):
                cfg = EngineConfig(fp16=precision == "fp16", int8=precision == "int8")
                start = time.perf_counter()
                report = build_engine_for(name, Path(tmp) / f"{name}-{precision}.engine", cfg)
                total = time.perf_counter() - start
                row = {
                    "model": name,
                    "precision": precision,
                    "build_s": round(report.engine.seconds, 2),
                    "command_s": round(total, 1),
                    "engine_mb": round(report.engine.size_mb, 2),
                    "compute_capabilities": report.engine.sidecar["compute_capabilities"],
                    "check": report.checks[0],
                }
                rows.append(row)
                print(
                    f"{name:<13}{precision:<6}build {row['build_s']:>6.1f} s  "
                    f"(whole command {row['command_s']:>6.1f} s)  {row['engine_mb']:>6.2f} MB  "
                    f"{row['check']}",
                    flush=True,
                )
    result = {
        "builder": trt.describe(),
        "machine": machine_description("cpu"),
        "profile": "min 64x64, opt 640x360, max 1920x1088 (build-engine defaults)",
        "rows": rows,
    }
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
