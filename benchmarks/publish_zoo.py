"""Copies trained models into the package zoo: fp16 storage (halves the file), the
training card, and the measured quality from benchmarks/quality.py appended to it.
A card also takes RUNS/NAME.notes.md (what the trainer could not record) and, where an INT8
file ships (`jsnet-edge calibrate NAME -o jsnet_edge/zoo/NAME-int8.onnx`, report moved to
RUNS/NAME-int8.calibration.json), the calibration's measured loss.

    python benchmarks/publish_zoo.py --runs runs/zoo --quality benchmarks/results/quality.json
    python benchmarks/publish_zoo.py --runs runs/rt \
        --realtime benchmarks/results/realtime_dev_cpu.json denoise-rt sr-x2-rt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from jsnet_edge.export.onnx import export_onnx
from jsnet_edge.models import load_model, save_model
from jsnet_edge.outputs import write_text

ZOO = Path(__file__).resolve().parents[1] / "jsnet_edge" / "zoo"

BASELINES = {
    "noisy": "noisy input",
    "bm3d": "BM3D / CBM3D",
    "nlmeans": "OpenCV fastNlMeans",
    "jpeg": "JPEG input",
    "bicubic": "bicubic",
    "authors": "authors' checkpoint",
    "jsnet": "this model",
}


def quality_section(name: str, quality: dict) -> str:
    res = quality["results"].get(name)
    if not res:
        return ""
    lines = [
        "",
        "## Measured quality (benchmarks/quality.py)",
        "",
        f"{len(quality['photos'])} test photographs never used in training "
        f"({', '.join(quality['photos'])}), {quality['crop']} px centre crops; "
        + {
            "denoise": "sigma 25, RGB PSNR",
            "denoise-camera": "Gaussian sigma 25, RGB PSNR (not the noise it was trained on)",
            "denoise-gray": "sigma 25, gray",
            "jpeg": "quality 10, RGB PSNR",
        }.get(name, "Y PSNR, border = scale")
        + ".",
        "",
        "| method | PSNR (dB) | SSIM |",
        "| --- | --- | --- |",
    ]
    for key, (p, s) in res["mean"].items():
        lines.append(f"| {BASELINES.get(key, key)} | {p:.2f} | {s:.4f} |")
    return "\n".join(lines) + "\n"


def realtime_section(name: str, rt: dict) -> str:
    """The rt models' measurements from benchmarks/realtime.py."""
    task = name.removesuffix("-rt")
    rows = rt["tasks"].get(task)
    if not rows or name not in {r["method"] for r in rows}:
        return ""
    lines = [
        "",
        "## Measured speed and quality (benchmarks/realtime.py)",
        "",
        f"{rt['machine']['cpu']}, 2 cores; one 640x360 frame per call (input; SR "
        f"outputs 1280x720); PSNR on {len(rt['photos'])} test photographs never used in "
        "training (" + ("sigma 25, RGB" if task == "denoise" else "Y, border 2") + ").",
        "",
        "| method | latency (ms) | PSNR (dB) | video, end to end (fps) |",
        "| --- | --- | --- | --- |",
    ]
    for r in rows:
        fps = f"{r['video']['pipeline_fps']:.1f}" if "video" in r else ""
        lines.append(f"| {r['method']} | {r['latency_ms']:.1f} | {r['psnr']:.2f} | {fps} |")
    return "\n".join(lines) + "\n"


def int8_section(name: str, report: dict) -> str:
    kept = ", ".join(report["kept_float"]) or "nothing"
    return "\n".join(
        [
            "",
            "## INT8 (shipped as `" + name + "-int8.onnx`)",
            "",
            f"`jsnet-edge calibrate {name} -o jsnet_edge/zoo/{name}-int8.onnx` (target "
            f"{report['target']}, {report['method']} ranges, calibration photographs: "
            f"{', '.join(report['calibration_images'])}; held out: "
            f"{', '.join(report['heldout_images'])}): {report['quantized_convs']} of "
            f"{report['total_convs']} convolutions in int8, kept in float: {kept}; "
            f"PSNR {report['int8_psnr']:.2f} dB vs {report['fp32_psnr']:.2f} dB in fp32 on the "
            f"held-out crops, a loss of {report['drop']:.3f} dB (every layer in int8: "
            f"{report['naive_drop']:.3f} dB). Use it with "
            f'`Restorer.from_pretrained("{name}", backend="openvino", precision="int8")`.',
            "",
        ]
    )


# Real-time models ship their exported graph too: video starts without importing torch.
SHIPPED_ONNX = ("denoise-rt", "sr-x2-rt", "denoise-hd")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=Path, default=Path("runs/zoo"))
    ap.add_argument("--quality", type=Path, default=None)
    ap.add_argument(
        "--realtime",
        type=Path,
        default=None,
        help="benchmarks/realtime.py's JSON, for the rt models' cards",
    )
    ap.add_argument(
        "names",
        nargs="*",
        default=["denoise", "denoise-gray", "jpeg", "sr-x2", "sr-x4", "denoise-rt", "sr-x2-rt"],
    )
    ap.add_argument(
        "--refresh-quality",
        action="store_true",
        help="only replace the measured-quality section of the zoo's cards (needs --quality)",
    )
    args = ap.parse_args()
    quality = json.loads(args.quality.read_text()) if args.quality else None
    if args.refresh_quality:
        for name in args.names:
            card_path = ZOO / f"{name}.md"
            section = quality_section(name, quality) if quality else ""
            if not section or not card_path.is_file():
                continue
            card = card_path.read_text()
            card = card.split("\n## Measured quality (benchmarks/quality.py)")[0].rstrip("\n")
            write_text(card_path, card + "\n" + section)
            print(f"{name}: card quality refreshed")
        return
    realtime = json.loads(args.realtime.read_text()) if args.realtime else None
    for name in args.names:
        src = args.runs / f"{name}.safetensors"
        if not src.is_file():
            print(f"{name}: not trained yet ({src})")
            continue
        model = load_model(src)
        dst = save_model(model, ZOO / f"{name}.safetensors", half=True)
        if name in SHIPPED_ONNX:  # the graph of the file shipped, for a start without torch
            export_onnx(load_model(dst), ZOO / f"{name}.onnx", overwrite=True)
        card = (args.runs / f"{name}.md").read_text().replace(f"# {name}\n", f"# {name}\n", 1)
        notes = args.runs / f"{name}.notes.md"
        if notes.is_file():
            card += notes.read_text()
        report = args.runs / f"{name}-int8.calibration.json"
        if report.is_file() and (ZOO / f"{name}-int8.onnx").is_file():
            card += int8_section(name, json.loads(report.read_text()))
        if quality:
            card += quality_section(name, quality)
        if realtime:
            card += realtime_section(name, realtime)
        write_text(ZOO / f"{name}.md", card)
        print(f"{name}: {dst} ({dst.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
