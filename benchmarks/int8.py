"""INT8 on photographs the calibration never saw: does `calibrate`'s estimate hold, how
much does each method lose, and how fast is it?

For each model, side by side in one run on this machine:
- `jsnet-edge calibrate` without --data (built-in photographs) and with --data (a folder
  of training photographs): its own estimate (mean, 90% bound) against the loss measured
  on the test folder;
- onnxruntime's `quantize_static` (QDQ, every layer, percentile ranges, same data);
- `jsnet-edge calibrate --qat --data` (quantisation-aware fine-tuning, NNCF fake
  quantisers, --qat STEPS) with its own estimate, when STEPS > 0;
- NNCF's post-training quantisation (`nncf.quantize`, ONNX backend, same data) and, with
  --nncf-accuracy-control, its accuracy-controlled variant on the authors' x2
  (`nncf.quantize_with_accuracy_control`, max drop 0.1 dB), when NNCF is installed;
- latency of one 320x180 frame (SR) or 640x360 (denoise, JPEG): onnxruntime fp32, OpenVINO
  fp32 / bf16, and each int8 file in OpenVINO (int8, and int8 with bf16 for the layers left
  in float), as speed-ups over onnxruntime fp32.

The test folder must share no source with the calibration data (benchmarks/data/README.md):

    python benchmarks/int8.py --calib data/train-base --test data/test \\
        --json benchmarks/results/int8_dev_cpu.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jsnet_edge.calibration.data import calibration_pairs, find_photos, heldout_pairs, split_photos
from jsnet_edge.calibration.estimate import estimate
from jsnet_edge.calibration.qat import QATConfig, qat
from jsnet_edge.calibration.quantize import CalibrationConfig, _pre_process, calibrate, score
from jsnet_edge.degradations import Degradation
from jsnet_edge.devices import machine_description
from jsnet_edge.export.graph import INPUT, read_onnx_metadata
from jsnet_edge.export.onnx import export_onnx
from jsnet_edge.models import load_official
from jsnet_edge.models.resolve import resolve_model
from jsnet_edge.outputs import write_json
from jsnet_edge.runtime.timing import TimingMethod, time_call
from jsnet_edge.zoo import ZOO

OFFICIAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "official"


def model_for(name: str):
    """A zoo model, or `authors-x2` / `-x3` / `-x4` from ../shared/official."""
    if name in ("authors-x2", "authors-x3", "authors-x4"):
        s = int(name[-1])
        return load_official(OFFICIAL / f"jsnet_sr_x{s}_official.pt", s)
    return resolve_model(name)


# Fast files (10 ms) are timed for 2 s at least: seven runs of them read +-25% apart.
TIMING = TimingMethod(warmup=3, repeats=300, min_repeats=7, min_seconds=2.0, max_seconds=120.0)


def timing(run, x) -> float:
    return time_call(lambda: run(x), TIMING).ms


def ort_ms(path: Path, x) -> float:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return timing(lambda a: s.run(None, {INPUT: a}), x)


def _ov_read(core, path: Path, end_f32: bool):
    """The file as OpenVINO reads it; `end_f32`: the network's end marked to stay f32 in
    a bf16 run, as the backend does for bf16 where the network has the paper's CSFM."""
    from jsnet_edge.runtime.openvino_backend import mark_end_f32

    m = core.read_model(str(path))
    return mark_end_f32(core, m) if end_f32 else m


def ov_ms(path: Path, x, precision: str, end_f32: bool = False) -> float:
    import openvino as ov

    core = ov.Core()
    m = _ov_read(core, path, end_f32)
    m.reshape({0: list(x.shape)})
    c = core.compile_model(
        m, "CPU", {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
    )
    r = c.create_infer_request()
    return timing(lambda a: r.infer({0: a}), x)


def ort_static(pre: Path, out: Path, calib) -> Path:
    from onnxruntime import quantization as q

    class Reader(q.CalibrationDataReader):
        def __init__(self) -> None:
            self.items = [{INPUT: p.input} for p in calib]
            self.set_range(0, len(self.items))

        def __len__(self) -> int:
            return len(self.items)

        def set_range(self, start_index: int, end_index: int) -> None:
            self.it = iter(self.items[start_index:end_index])

        def get_next(self):
            return next(self.it, None)

    logging.getLogger().setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()):
        q.quantize_static(
            str(pre),
            str(out),
            Reader(),
            quant_format=q.QuantFormat.QDQ,
            per_channel=True,
            activation_type=q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            calibrate_method=q.CalibrationMethod.Percentile,
            extra_options={"CalibStridedMinMax": 1, "CalibPercentile": 99.999},
        )
    return out


def nncf_files(
    fp32: Path, work: Path, calib, val, scale: int, accuracy_control: bool
) -> dict[str, Path]:
    try:
        import nncf
        import onnx
    except ImportError:
        return {}
    proto = onnx.load(str(fp32))
    dataset = nncf.Dataset([p.input for p in calib], lambda x: {INPUT: x})
    out = {}
    plain = nncf.quantize(proto, dataset, subset_size=len(calib))
    onnx.save(plain, str(work / "nncf.onnx"))
    out["nncf.quantize"] = work / "nncf.onnx"
    if not accuracy_control:
        return out

    def validate(model, items) -> float:
        path = work / "nncf-ac-trial.onnx"
        onnx.save(model, str(path))
        return float(np.mean(list(score(path, list(items), scale).values())))

    try:
        ac = nncf.quantize_with_accuracy_control(
            proto,
            dataset,
            nncf.Dataset(val),
            validation_fn=validate,
            max_drop=0.1,
            drop_type=nncf.DropType.ABSOLUTE,
            subset_size=len(calib),
            # Ranking tries every quantiser group (385 in the authors' x2) on the ranking
            # subset: capped so that the row finishes in minutes on two cores.
            advanced_accuracy_restorer_parameters=nncf.AdvancedAccuracyRestorerParameters(
                max_num_iterations=40, ranking_subset_size=4
            ),
        )
        onnx.save(ac, str(work / "nncf-ac.onnx"))
        out["nncf accuracy control (0.1 dB)"] = work / "nncf-ac.onnx"
    except Exception as e:  # noqa: BLE001 - reported, the other rows stand
        print(f"nncf accuracy control failed: {type(e).__name__}: {e}", file=sys.stderr)
    return out


def int8_convs(path: Path) -> str:
    import onnx

    g = onnx.load(str(path)).graph
    produced = {o: n for n in g.node for o in n.output}
    convs = [n for n in g.node if n.op_type == "Conv"]
    quantised = sum(
        1 for n in convs if (src := produced.get(n.input[0])) and src.op_type == "DequantizeLinear"
    )
    return f"{quantised}/{len(convs)}"


def test_setup(net, name: str, test_dir: Path, work: Path):
    """What every int8 file of `net` is judged against: the held-out pairs, the fp32 file
    and its scores on them, and the timing input (320x180 for SR, 640x360 otherwise)."""
    deg = Degradation(net.task)
    test = heldout_pairs(
        find_photos(test_dir, net.colors), deg, 192, seed=5000, multiple=net.size_multiple
    )
    fp32 = export_onnx(net, work / f"{name}-fp32.onnx")
    reference = score(fp32, test, net.scale)
    size = (320, 180) if net.scale > 1 else (640, 360)
    x = np.random.default_rng(0).uniform(0, 255, (1, net.colors, size[1], size[0]))
    return deg, test, fp32, reference, size, x.astype(np.float32)


def run_model(name: str, args, work: Path) -> dict:
    net = model_for(name)
    deg, test, fp32, reference, size, x = test_setup(net, name, args.test, work)
    base_ms = ort_ms(fp32, x)
    row0 = {
        "fp32 psnr": float(np.mean(list(reference.values()))),
        "onnxruntime fp32 ms": base_ms,
        "openvino fp32 x": base_ms / ov_ms(fp32, x, "f32"),
        "openvino bf16 x": base_ms / ov_ms(fp32, x, "bf16"),
        "bf16 loss (unseen)": estimate(
            reference, _ov_scores(fp32, test, net.scale, "bf16")
        ).to_dict(),
        # What the backend runs for bf16: the network's end kept in f32.
        "openvino bf16 end-f32 x": base_ms / ov_ms(fp32, x, "bf16", end_f32=True),
        "bf16 end-f32 loss (unseen)": estimate(
            reference, _ov_scores(fp32, test, net.scale, "bf16", end_f32=True)
        ).to_dict(),
    }
    print(
        f"  OpenVINO bf16 {row0['openvino bf16 x']:.2f}x, loss "
        f"{row0['bf16 loss (unseen)']['mean']:.3f} dB; with the end in f32 "
        f"{row0['openvino bf16 end-f32 x']:.2f}x, {row0['bf16 end-f32 loss (unseen)']['mean']:.3f}"
        " dB",
        flush=True,
    )

    def rows_for(files: dict[str, tuple[Path, dict | None]]) -> dict:
        rows = {}
        for tag, (path, claimed) in files.items():
            unseen = estimate(reference, score(path, test, net.scale))
            rows[tag] = {
                "claimed": claimed,
                "unseen": unseen.to_dict(),
                "int8 convs": int8_convs(path),
                "openvino int8 x": base_ms / ov_ms(path, x, "f32"),
                "openvino int8+bf16 x": base_ms / ov_ms(path, x, "bf16"),
                "openvino int8+bf16 end-f32 x": base_ms / ov_ms(path, x, "bf16", end_f32=True),
                "int8+bf16 end-f32 loss (unseen)": estimate(
                    reference, _ov_scores(path, test, net.scale, "bf16", end_f32=True)
                ).to_dict(),
            }
            r = rows[tag]
            claim = ""
            if claimed:
                claim = f"claimed {claimed['mean']:.3f} (held to {claimed['held']:.3f})"
            print(
                f"  {tag:<34} unseen loss {unseen.mean:.3f} dB (spread {unseen.spread:.3f}, worst "
                f"{unseen.worst:.3f}) {claim}; int8 convs {r['int8 convs']}; OpenVINO int8 "
                f"{r['openvino int8 x']:.2f}x, int8+bf16 {r['openvino int8+bf16 x']:.2f}x; "
                f"int8+bf16 with the end in f32 {r['openvino int8+bf16 end-f32 x']:.2f}x at "
                f"{r['int8+bf16 end-f32 loss (unseen)']['mean']:.3f} dB (OpenVINO's output)",
                flush=True,
            )
        return rows

    files: dict[str, tuple[Path, dict | None]] = {}
    runs = (
        ()
        if args.shipped_only or args.qat_only or args.onnx
        else (("calibrate (no --data)", None), ("calibrate --data", args.calib))
    )
    for tag, data in runs:
        out = work / f"{name}-{len(files)}.onnx"
        t = time.perf_counter()
        report = calibrate(net, out, CalibrationConfig(data=data), log=lambda s: None)
        print(f"  {tag}: {report.summary()} ({time.perf_counter() - t:.0f} s)", flush=True)
        files[tag] = (
            out,
            {
                "mean": report.drop,
                "held": report.held,
                "held_to": report.held_to,
                "bound": report.bound,
                "n": report.estimate["n"],
            },
        )
    if args.qat:
        out = work / f"{name}-qat.onnx"
        t = time.perf_counter()
        qcfg = QATConfig(
            steps=args.qat,
            lr=args.qat_lr,
            batch=args.qat_batch,
            crop=args.qat_crop,
            loss=args.qat_loss,
            scope=args.qat_scope,
        )
        report = qat(
            net,
            out,
            CalibrationConfig(data=args.calib),
            qcfg,
            log=lambda m: print(f"    {m}", file=sys.stderr, flush=True),
        )
        print(f"  calibrate --qat --data: {report.summary()} ({time.perf_counter() - t:.0f} s)")
        files[
            f"calibrate --qat --steps {args.qat} --loss {args.qat_loss} --scope {args.qat_scope} "
            "--data"
        ] = (
            out,
            {
                "mean": report.drop,
                "held": report.held,
                "held_to": report.held_to,
                "bound": report.bound,
                "n": report.estimate["n"],
                "ptq start": report.qat["ptq"]["mean"],
                "qat seconds": report.qat["seconds"],
            },
        )
    shipped = ZOO[name].int8_path if name in ZOO else None
    if shipped is not None and shipped.is_file():
        files["shipped " + shipped.name] = (shipped, _claimed(shipped))
    for item in args.onnx:
        label, path = item.split("=", 1)
        files[label] = (Path(path), _claimed(Path(path)))
    if args.shipped_only or args.calibrate_only or args.qat_only or args.onnx:
        return {"task": net.task, "input": list(size), **row0, "methods": rows_for(files)}
    photos = find_photos(args.calib, net.colors)
    calib_photos, held_photos = split_photos(photos)
    calib = calibration_pairs(calib_photos, deg, 32, 128, 0, net.size_multiple)
    pre = work / f"{name}-pre.onnx"
    _pre_process(fp32, pre)
    files["onnxruntime quantize_static"] = (ort_static(pre, work / f"{name}-ort.onnx", calib), None)
    val = heldout_pairs(held_photos, deg, 192, 1000, net.size_multiple)
    ac = args.nncf_accuracy_control and name == "authors-x2"
    for tag, path in nncf_files(fp32, work, calib, val, net.scale, ac).items():
        files[tag] = (path, None)
    return {"task": net.task, "input": list(size), **row0, "methods": rows_for(files)}


def _claimed(path: Path) -> dict:
    """What `calibrate` wrote into an int8 file's metadata about its own loss."""
    report = json.loads(read_onnx_metadata(path)["calibration"])
    claimed = {"mean": report["drop"], "held": report.get("held", report.get("bound")), "n": 0}
    if report.get("qat"):
        claimed["ptq start"] = report["qat"]["ptq"]["mean"]
        claimed["qat"] = {k: report["qat"].get(k) for k in ("steps", "seconds", "scope")}
    return claimed


def _ov_scores(
    path: Path, pairs, scale: int, precision: str, end_f32: bool = False
) -> dict[str, float]:
    import openvino as ov

    from jsnet_edge.metrics import score as score_image

    core = ov.Core()
    c = core.compile_model(
        _ov_read(core, path, end_f32), "CPU", {"INFERENCE_PRECISION_HINT": precision}
    )
    return {
        p.name: score_image(np.asarray(c(p.input)[0])[0].transpose(1, 2, 0), p.target, scale=scale)
        for p in pairs
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calib", type=Path, required=True, help="training/calibration photographs")
    ap.add_argument("--test", type=Path, required=True, help="photographs disjoint from --calib")
    ap.add_argument("--models", default="authors-x2,denoise-rt,sr-x2-rt,jpeg")
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--nncf-accuracy-control",
        action="store_true",
        help="also run nncf.quantize_with_accuracy_control on authors-x2 (slow: tens of minutes)",
    )
    ap.add_argument(
        "--shipped-only",
        action="store_true",
        help="only the INT8 files the zoo ships (e.g. jpeg-int8.onnx), against fp32",
    )
    ap.add_argument(
        "--calibrate-only",
        action="store_true",
        help="only `calibrate` (with and without --data) and the shipped files, no peers",
    )
    ap.add_argument(
        "--qat", type=int, default=0, help="also `calibrate --qat` with this many steps"
    )
    ap.add_argument(
        "--qat-only", action="store_true", help="only the --qat row (and fp32/bf16), no peers"
    )
    ap.add_argument("--qat-batch", type=int, default=8, help="QAT crops per step")
    ap.add_argument("--qat-crop", type=int, default=64, help="QAT crop side (input pixels)")
    ap.add_argument("--qat-loss", default="db", help="QAT loss: l1 or db")
    ap.add_argument("--qat-scope", default="convs", help="QAT int8 scope: convs, body or all")
    ap.add_argument("--qat-lr", type=float, default=5e-4, help="its learning rate")
    ap.add_argument(
        "--onnx",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help=(
            "only score and time this int8 file of the one model in --models (e.g. a long "
            "`calibrate --qat` run made in the background), beside fp32 and bf16; repeatable"
        ),
    )
    args = ap.parse_args(argv)
    if args.onnx and ("," in args.models or any("=" not in o for o in args.onnx)):
        ap.error("--onnx takes LABEL=PATH and one model in --models")
    result = {
        "machine": machine_description("cpu"),
        "calib": str(args.calib),
        "test": str(args.test),
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            print(f"{name}:", flush=True)
            result["models"][name] = run_model(name, args, Path(tmp))
            if args.json:
                write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
