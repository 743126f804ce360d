"""Quantisation-aware fine-tuning, library against library, on the same networks, crops,
steps, loss and photographs: jsnet-edge's `calibrate --qat` (NNCF fake quantisers) and
NVIDIA's TensorRT Model Optimizer (ModelOpt, `modelopt.torch.quantization`).

For each model, side by side in one run on this machine:
- `calibrate --qat --scope S` for the CPU runtimes (uint8 activations) and for TensorRT
  (symmetric int8), every block of the scope in int8 (no block search: `--max-drop` out of
  reach): convs (the inputs and weights of the body's convolutions), body (NNCF's placement
  for OpenVINO: also adds, multiplications, concatenations) and all (body plus the layers
  that read or write image values);
- ModelOpt's `INT8_DEFAULT_CFG` (per-channel int8 weights, per-tensor int8 inputs of every
  convolution; its ranges are fixed at calibration and not trained), calibrated on the same
  crops, its head and tail left in float as `--scope convs` leaves them, then fine-tuned
  by the same training step (`calibration.qat.train_step`) and exported through the same
  exporter;
- each file's loss on the --test photographs (never seen by calibration or training) and
  its speed in OpenVINO (int8, and int8 with bf16 for the float layers) against
  onnxruntime fp32.

PyTorch's own `torch.ao` QAT is not run: deprecated since torch 2.10 (its successor is the
separate torchao package), and its FX tracer stops at the networks' shape-dependent
padding (`prepare_qat_fx`: "symbolically traced variables cannot be used as inputs to
control flow").

    pip install nvidia-modelopt huggingface_hub  # beside the dev install (CPU: plain torch)
    python benchmarks/qat_libraries.py --calib data/train-base --test data/test \\
        --models sr-x2-rt,denoise-rt --steps 1000 \\
        --json benchmarks/results/qat_libraries_dev_cpu.json
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from int8 import int8_convs, model_for, ort_ms, ov_ms, test_setup  # noqa: E402

from jsnet_edge.calibration.estimate import estimate  # noqa: E402
from jsnet_edge.calibration.fakequant import as_tensor  # noqa: E402
from jsnet_edge.calibration.qat import QATConfig, qat, train_step  # noqa: E402
from jsnet_edge.calibration.quantize import CalibrationConfig, prepare_data, score  # noqa: E402
from jsnet_edge.devices import machine_description  # noqa: E402
from jsnet_edge.export.onnx import fold_mean_shift, trace_onnx  # noqa: E402
from jsnet_edge.outputs import write_json  # noqa: E402


def modelopt_qat(net, cfg: CalibrationConfig, qcfg: QATConfig, work: Path):
    """ModelOpt's int8 QAT of `net`: (start, finished) Q/DQ ONNX files."""
    try:
        import modelopt
        import modelopt.torch.quantization as mtq
    except ImportError as e:
        raise SystemExit(
            f"ModelOpt cannot be imported ({e}): pip install nvidia-modelopt huggingface_hub, "
            "or pass --no-modelopt"
        ) from None

    data = prepare_data(net, cfg, lambda m: None)
    qm = fold_mean_shift(net)
    teacher = fold_mean_shift(net).eval().requires_grad_(False)
    config = copy.deepcopy(mtq.INT8_DEFAULT_CFG)
    # As `--scope convs`: the layers that read or write images stay in float (entries
    # apply in order: these come last).
    for name in ("*head*", "*tail*"):
        config["quant_cfg"].append({"quantizer_name": name, "enable": False})

    def forward_loop(m) -> None:
        with torch.no_grad():
            for p in data.calib:
                m(as_tensor(p.input))

    qm = mtq.quantize(qm, config, forward_loop)
    side = -(-max(64, net.min_size) // net.size_multiple) * net.size_multiple
    shape = (1, net.colors, side, side)

    def save(label: str) -> Path:
        path = work / f"modelopt-{label}.onnx"
        onnx.save(trace_onnx(qm.eval(), shape), str(path))
        return path

    start = save("start")
    params = [p for p in qm.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=qcfg.lr)
    qm.train()
    t0 = time.perf_counter()
    for step in range(qcfg.steps):
        train_step(qm, teacher, data.photos[0], data.deg, qcfg, step, cfg.seed, optimizer)
    seconds = time.perf_counter() - t0
    return start, save("qat"), {"library": f"modelopt {modelopt.__version__}", "seconds": seconds}


def run_model(name: str, args, work: Path) -> dict:
    net = model_for(name)
    _, test, fp32, reference, size, x = test_setup(net, name, args.test, work)
    result = {"task": net.task, "input": list(size), "rows": {}}
    args.result["models"][name] = result
    files: dict[str, Path] = {}
    qcfg = QATConfig(
        steps=args.steps,
        batch=args.batch,
        crop=args.crop,
        lr=args.lr,
        loss=args.loss,
    )

    def row(tag: str, path: Path, extra: dict) -> None:
        unseen = estimate(reference, score(path, test, net.scale))
        files[tag] = path
        result["rows"][tag] = {**extra, "unseen": unseen.to_dict(), "int8 convs": int8_convs(path)}
        print(
            f"  {tag:<48} unseen loss {unseen.mean:.3f} dB (spread {unseen.spread:.3f}, worst "
            f"{unseen.worst:.3f}); int8 convs {int8_convs(path)}",
            flush=True,
        )
        if args.json:
            write_json(args.json, args.result)

    for run in args.scopes.split(","):
        target, scope = run.split(":")
        out = work / f"{name}-{target}-{scope}.onnx"
        cfg = CalibrationConfig(data=args.calib, max_drop=100.0, target=target)
        report = qat(net, out, cfg, dataclasses.replace(qcfg, scope=scope))
        tag = f"jsnet-edge (NNCF) --target {target} --scope {scope}"
        row(tag, out, {"ptq start (calibration photos)": report.qat["ptq"]["mean"], **report.qat})
    if args.modelopt:
        cfg = CalibrationConfig(data=args.calib)
        start, done, info = modelopt_qat(net, cfg, qcfg, work)
        row("ModelOpt INT8_DEFAULT_CFG, post-training start", start, info)
        row("ModelOpt INT8_DEFAULT_CFG, QAT", done, info)
    # Every file timed side by side, in rounds, so that a slow minute hits all of them.
    runs = {
        "onnxruntime fp32": lambda: ort_ms(fp32, x),
        "openvino bf16": lambda: ov_ms(fp32, x, "bf16"),
    }
    for tag, path in files.items():
        runs[f"{tag} | int8"] = lambda p=path: ov_ms(p, x, "f32")
        runs[f"{tag} | int8+bf16"] = lambda p=path: ov_ms(p, x, "bf16")
    samples: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.rounds):
        for k, run in runs.items():
            samples[k].append(run())
    ms = {k: float(np.median(v)) for k, v in samples.items()}
    result["timing rounds ms"] = {k: [round(t, 3) for t in v] for k, v in samples.items()}
    base = ms["onnxruntime fp32"]
    result["onnxruntime fp32 ms"] = base
    result["openvino bf16 ms"] = ms["openvino bf16"]
    result["openvino bf16 x"] = base / ms["openvino bf16"]
    print(f"  onnxruntime fp32 {base:.2f} ms; OpenVINO bf16 {base / ms['openvino bf16']:.2f}x")
    for tag in files:
        r = result["rows"][tag]
        for kind in ("int8", "int8+bf16"):
            r[f"openvino {kind} ms"] = ms[f"{tag} | {kind}"]
            r[f"openvino {kind} x"] = base / ms[f"{tag} | {kind}"]
        r["best vs bf16"] = ms["openvino bf16"] / min(ms[f"{tag} | int8"], ms[f"{tag} | int8+bf16"])
        print(
            f"  {tag:<48} OpenVINO int8 {r['openvino int8 x']:.2f}x, int8+bf16 "
            f"{r['openvino int8+bf16 x']:.2f}x onnxruntime fp32; "
            f"best {r['best vs bf16']:.2f}x bf16",
            flush=True,
        )
    return result


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calib", type=Path, required=True, help="training/calibration photographs")
    ap.add_argument("--test", type=Path, required=True, help="photographs disjoint from --calib")
    ap.add_argument("--models", default="sr-x2-rt,denoise-rt")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--loss", default="db")
    ap.add_argument("--rounds", type=int, default=3, help="timing rounds over all files")
    ap.add_argument(
        "--scopes",
        default="cpu:convs,tensorrt:convs,cpu:body,cpu:all",
        help="the `calibrate --qat` runs, as target:scope",
    )
    ap.add_argument("--no-modelopt", dest="modelopt", action="store_false")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    args.result = {
        "machine": machine_description("cpu"),
        "calib": str(args.calib),
        "test": str(args.test),
        "qat": {"steps": args.steps, "batch": args.batch, "crop": args.crop, "lr": args.lr,
                "loss": args.loss},
        "models": {},
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            print(f"{name}:", flush=True)
            run_model(name, args, Path(tmp))
    if args.json:
        write_json(args.json, args.result)
    return args.result


if __name__ == "__main__":
    main()
