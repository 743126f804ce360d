"""bf16 on OpenVINO: how much does it lose, and what does keeping the network's end in f32
buy back? Every zoo model and the authors' checkpoints, on photographs never trained on.

For each model, side by side in one run on this machine: OpenVINO f32 (the reference
output), bf16 as OpenVINO runs it by default, and bf16 with the end of the network (from
the cross-scale fusion module to the output) marked to stay f32; the loss in dB against
the task's clean photograph (PSNR protocol of `metrics.score`; crops of 192 input pixels
of each test photograph, degraded for the task) and the latency of one frame (320x180 for
SR, 640x360 otherwise; three alternating rounds, median). The last column says which
bf16 the backend runs for that model (`openvino_backend.end_in_f32`).

    python benchmarks/bf16.py --test data/test --json benchmarks/results/bf16_dev_cpu.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from jsnet_edge.calibration.data import find_photos, heldout_pairs
from jsnet_edge.degradations import Degradation
from jsnet_edge.devices import machine_description
from jsnet_edge.export.onnx import export_onnx
from jsnet_edge.outputs import write_json
from jsnet_edge.runtime.openvino_backend import _framework, end_in_f32
from jsnet_edge.runtime.timing import TimingMethod, time_call
from jsnet_edge.zoo import ZOO

sys.path.insert(0, str(Path(__file__).resolve().parent))
from int8 import OFFICIAL, _ov_read, _ov_scores, model_for  # noqa: E402

TIMING = TimingMethod(warmup=2, repeats=15, min_repeats=5, min_seconds=1.5, max_seconds=10.0)
VARIANTS = ("f32", "bf16", "bf16 end-f32")


def compiled(core, path: Path, variant: str, shape):
    """One variant compiled for one input shape, for timing."""
    m = _ov_read(core, path, end_f32=variant == "bf16 end-f32")
    m.reshape({0: list(shape)})
    hint = "f32" if variant == "f32" else "bf16"
    return core.compile_model(
        m, "CPU", {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
    )


def run_model(name: str, test_dir: Path, work: Path, rounds: int) -> dict:
    import openvino as ov

    core = ov.Core()
    net = model_for(name)
    deg = Degradation(net.task)
    pairs = heldout_pairs(
        find_photos(test_dir, net.colors), deg, 192, seed=5000, multiple=net.size_multiple
    )
    path = export_onnx(net, work / f"{name}.onnx")
    scores = {
        v: _ov_scores(path, pairs, net.scale, v.split()[0], end_f32=v == "bf16 end-f32")
        for v in VARIANTS
    }
    size = (320, 180) if net.scale > 1 else (640, 360)
    x = np.random.default_rng(0).uniform(0, 255, (1, net.colors, size[1], size[0]))
    x = x.astype(np.float32)
    runs = {}
    for v in VARIANTS:
        r = compiled(core, path, v, x.shape).create_infer_request()
        runs[v] = r
    ms = {v: [] for v in VARIANTS}
    for _ in range(rounds):
        for v, r in runs.items():
            ms[v].append(time_call(lambda r=r: r.infer({0: x}), TIMING).ms)
    row = {"task": net.task, "genotype": net.genotype.to_string(), "input": list(size)}
    ref = scores["f32"]
    row["f32 psnr"] = float(np.mean(list(ref.values())))
    for v in VARIANTS:
        loss = np.array([ref[k] - scores[v][k] for k in ref])
        row[v] = {
            "loss": float(loss.mean()),
            "worst": float(loss.max()),
            "ms": float(np.median(ms[v])),
            "rounds ms": ms[v],
        }
    row["backend runs"] = (
        "bf16 end-f32" if end_in_f32(_framework(core.read_model(str(path)))) else "bf16"
    )
    b, e, f = row["bf16"], row["bf16 end-f32"], row["f32"]
    print(
        f"{name:16} f32 {f['ms']:7.1f} ms | bf16 {b['loss']:.3f} dB (worst {b['worst']:.3f}) "
        f"{f['ms'] / b['ms']:.2f}x | end in f32 {e['loss']:.3f} dB (worst {e['worst']:.3f}) "
        f"{f['ms'] / e['ms']:.2f}x | backend: {row['backend runs']}",
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--test", type=Path, required=True, help="photographs never trained on")
    ap.add_argument(
        "--models",
        default=",".join(["authors-x2", "authors-x3", "authors-x4", *ZOO]),
        help="zoo names and authors-x2/x3/x4",
    )
    ap.add_argument("--rounds", type=int, default=3, help="alternating timing rounds")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    result = {"machine": machine_description("cpu"), "test": str(args.test), "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            if name.startswith("authors-x") and not OFFICIAL.is_dir():
                print(f"{name}: skipped, {OFFICIAL} is absent", file=sys.stderr)
                continue
            result["models"][name] = run_model(name, args.test, Path(tmp), args.rounds)
            if args.json:
                write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
