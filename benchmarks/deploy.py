"""Deployment benchmark: every backend and precision, for the zoo and the authors' x2.

For each model: calibrate INT8 (`jsnet-edge calibrate`, cached under --work), then
`jsnet-edge bench` (each configuration in its own process, one run, side by side) at the
input size of the issue (320x180), and check the targets against onnxruntime fp32 of the
same run:
  - best INT8 path: >= 2.5x onnxruntime fp32, PSNR loss <= 0.1 dB;
  - best 16-bit path: at least as fast as OpenVINO bf16, PSNR loss <= 0.05 dB.

    python benchmarks/deploy.py [--models authors-x2,denoise,sr-x2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from jsnet_edge.bench import bench, default_configs, table
from jsnet_edge.calibration.quantize import CalibrationConfig, calibrate
from jsnet_edge.devices import machine_description
from jsnet_edge.models import load_official, save_model
from jsnet_edge.models.resolve import resolve_model


def model_file(name: str, work: Path, official: Path) -> str:
    if name.startswith("authors-x"):
        scale = int(name[-1])
        path = work / f"{name}.safetensors"
        if not path.is_file():
            save_model(load_official(official / f"jsnet_sr_x{scale}_official.pt", scale), path)
        return str(path)
    return name


def targets(rows) -> dict:
    ok = [r for r in rows if r.median_ms]
    int8 = [r for r in ok if r.precision == "int8"]
    half = [r for r in ok if r.precision in ("bf16", "fp16")]
    ov16 = next((r for r in ok if r.backend == "openvino" and r.precision == "bf16"), None)
    out = {}
    if int8:
        best = min(int8, key=lambda r: r.median_ms)
        out["int8"] = {
            "path": f"{best.backend} int8",
            "speedup": best.speedup,
            "loss_db": best.psnr_loss,
            "met": bool(best.speedup >= 2.5 and best.psnr_loss <= 0.1),
        }
    if half:
        best = min(half, key=lambda r: r.median_ms)
        out["16bit"] = {
            "path": f"{best.backend} {best.precision}",
            "ms": best.median_ms,
            "openvino_bf16_ms": ov16.median_ms if ov16 else None,
            "loss_db": best.psnr_loss,
            "met": bool(
                best.psnr_loss <= 0.05
                and (ov16 is None or best.median_ms <= ov16.median_ms * 1.0001)
            ),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="authors-x2,denoise,sr-x2")
    ap.add_argument("--input-size", default="320x180")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--work", type=Path, default=Path("runs/deploy"))
    ap.add_argument("--official", type=Path, default=Path("../shared/official"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    w, h = (int(v) for v in args.input_size.split("x"))
    results = {"machine": machine_description("cpu"), "input_size": [w, h], "models": {}}
    for name in args.models.split(","):
        path = model_file(name, args.work, args.official)
        int8 = args.work / f"{name}_int8.onnx"
        report = None
        if not int8.is_file():
            t = time.perf_counter()
            report = calibrate(
                resolve_model(path),
                int8,
                CalibrationConfig(),
                log=lambda m: print("   ", m, flush=True),
            )
            print(f"{name}: calibrated in {time.perf_counter() - t:.0f} s: {report.summary()}")
        rows = bench(path, default_configs(path, str(int8), "cpu"), (w, h), repeats=args.repeats)
        print(f"\n== {name}\n{table(rows, (w, h))}")
        verdict = targets(rows)
        for k, v in verdict.items():
            print(f"target {k}: {v}")
        results["models"][name] = {
            "rows": [r.__dict__ for r in rows],
            "targets": verdict,
            "calibration": json.loads(report.to_json()) if report else None,
        }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
