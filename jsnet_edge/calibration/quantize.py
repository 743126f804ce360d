"""INT8 by calibration, as an ONNX file with explicit Q/DQ nodes.

The naive path (every layer quantised with MinMax ranges) loses 0.5-0.7 dB on JSNet. We
calibrate once (percentile ranges by default, per-channel weights), then run a measured
sensitivity search: groups of layers (a cell's operation or attention block, the CSFM,
the head, the tail ...) are tried in float, the ones whose quantisation costs most PSNR on
held-out photographs are kept in float, greedily, until the loss is within `max_drop`.
Every decision is measured with onnxruntime on the real Q/DQ graph, not estimated.

Targets: "cpu" writes uint8 activations / int8 weights (what onnxruntime and OpenVINO
run fastest on x86); "tensorrt" writes symmetric int8 for both (TensorRT accepts only
zero points of 0).
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import logging
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from jsnet_edge.calibration.data import Pair, find_photos, make_pairs, split_photos
from jsnet_edge.degradations import Degradation
from jsnet_edge.errors import MissingDependencyError, ModelError, OptionError
from jsnet_edge.export.onnx import export_onnx, model_metadata, save_onnx
from jsnet_edge.metrics import score as score_image
from jsnet_edge.models.network import JSNet
from jsnet_edge.outputs import check_output, write_text
from jsnet_edge.runtime.onnxruntime_backend import OnnxRuntimeBackend

METHODS = ("minmax", "percentile", "entropy")
TARGETS = ("cpu", "tensorrt")


@dataclass(frozen=True)
class CalibrationConfig:
    """Options of `calibrate`.

    Args:
        data: folder of photographs (default: the photographs shipped with the package).
        num_images: calibration crops (taken from the non-held-out photographs).
        method: activation range estimation (minmax, percentile, entropy).
        max_drop: largest acceptable PSNR loss (dB) against fp32 on held-out crops.
        target: "cpu" (onnxruntime/OpenVINO) or "tensorrt".
        crop: side of the calibration crops, in network-input pixels.
        heldout: held-out crops used to measure the loss.
        sigma, quality: degradation for denoising / JPEG models (default: the one
            `Degradation` default, sigma 25 / quality 10).
        margin: the search aims at `margin * max_drop` on its held-out crops, because the
            loss measured on other photographs varies by a few hundredths of a dB.
    """

    data: Path | None = None
    num_images: int = 16
    method: str = "percentile"
    max_drop: float = 0.1
    target: str = "cpu"
    crop: int = 128
    heldout: int = 6
    sigma: float | None = None
    quality: int | None = None
    percentile: float = 99.999
    margin: float = 0.7
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise OptionError(f"--method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if self.target not in TARGETS:
            raise OptionError(f"--target must be one of {', '.join(TARGETS)}, not {self.target!r}")
        if self.num_images < 1 or self.heldout < 1:
            raise OptionError("--num-images and the held-out count must be at least 1")
        if self.max_drop < 0:
            raise OptionError(f"--max-drop must be >= 0 dB, got {self.max_drop}")
        if not 0 < self.margin <= 1:
            raise OptionError(f"margin must be in (0, 1], got {self.margin}")
        if self.crop < 32:
            raise OptionError(f"calibration crops must be at least 32 pixels, got {self.crop}")


@dataclass
class CalibrationReport:
    target: str
    method: str
    max_drop: float
    fp32_psnr: float
    int8_psnr: float
    drop: float
    naive_drop: float
    kept_float: list[str] = field(default_factory=list)
    quantized_convs: int = 0
    total_convs: int = 0
    search: list[dict] = field(default_factory=list)
    calibration_images: list[str] = field(default_factory=list)
    heldout_images: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def shortfall(self) -> str | None:
        """None when the loss is within `max_drop`, else what was missed, for the user."""
        if self.drop <= self.max_drop:
            return None
        return (
            f"the loss {self.drop:.3f} dB is above --max-drop {self.max_drop}; the file keeps "
            "the best trade-off found (see the report)"
        )

    def summary(self) -> str:
        kept = ", ".join(self.kept_float) or "nothing"
        return (
            f"int8 ({self.target}, {self.method}): {self.int8_psnr:.2f} dB vs fp32 "
            f"{self.fp32_psnr:.2f} dB on held-out crops, loss {self.drop:.3f} dB "
            f"(all layers quantised: {self.naive_drop:.3f} dB); "
            f"{self.quantized_convs}/{self.total_convs} convolutions in int8; "
            f"kept in float: {kept}"
        )


def group_of(node_name: str, level: int) -> str:
    """The block a graph node belongs to, from the module path in its name.

    level 0: head, cells.i, fusion, csfm, tail, and "network" for the glue between them
    (the global residual adds and concatenations); level 1: cells.i.ops.j, cells.i.atts.j,
    cells.i.process, csfm.pa_1, csfm.ca_1_1, csfm.Add_2 ... Level-1 names always extend a
    level-0 name, so the two never collide.
    """
    parts = [p for p in node_name.strip("/").split("/") if p]
    if len(parts) < 2:
        return "network"
    return parts[0] if level == 0 else f"{parts[0]}.{parts[1]}"


def _ort():
    try:
        import onnxruntime as ort
        from onnxruntime import quantization as q
    except ImportError:
        raise MissingDependencyError(
            "calibration needs onnxruntime: pip install onnxruntime"
        ) from None
    return ort, q


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over our calibration crops.

    `set_range` lets onnxruntime calibrate one image at a time (CalibStridedMinMax, which
    despite its name strides every method): its histogram calibrators otherwise keep every
    activation of every image in memory at once (over 15 GB for the paper's network).
    """

    def __init__(self, pairs: list[Pair]) -> None:
        self.data = [{"input": p.input} for p in pairs]
        self.set_range(0, len(self.data))

    def __len__(self) -> int:
        return len(self.data)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.items = iter(self.data[start_index:end_index])

    def get_next(self):
        return next(self.items, None)


def score(onnx_path: Path, pairs: list[Pair], scale: int, colors: int) -> float:
    """Mean PSNR of an ONNX network on held-out pairs (the protocol of `metrics.score`)."""
    backend = OnnxRuntimeBackend(onnx_path, precision="fp32")
    values = [
        score_image(backend(p.input)[0].transpose(1, 2, 0), p.target, scale=scale) for p in pairs
    ]
    return float(np.mean(values))


class Quantizer:
    """Calibrates once, then writes Q/DQ variants that keep chosen nodes in float."""

    def __init__(self, pre: Path, calib: list[Pair], cfg: CalibrationConfig, workdir: Path):
        _, q = _ort()
        self.q, self.pre, self.cfg, self.calib = q, pre, cfg, calib
        self.cache = workdir / "ranges.json"
        self.cached = "calibration_cache_path" in inspect.signature(q.quantize_static).parameters
        self.method = {
            "minmax": q.CalibrationMethod.MinMax,
            "percentile": q.CalibrationMethod.Percentile,
            "entropy": q.CalibrationMethod.Entropy,
        }[cfg.method]

    def write(self, out: Path, exclude: list[str]) -> Path:
        q, trt = self.q, self.cfg.target == "tensorrt"
        # TensorRT takes float biases and folds them itself (NVIDIA's Q/DQ placement
        # guidance); onnxruntime's CPU kernels want int32 biases.
        extra = {
            "ActivationSymmetric": trt,
            "WeightSymmetric": True,
            "QuantizeBias": not trt,
            "CalibPercentile": self.cfg.percentile,
            "CalibStridedMinMax": 1,
        }
        kwargs = {}
        reader = _Reader(self.calib)
        if self.cached:
            kwargs["calibration_cache_path"] = str(self.cache)
            if self.cache.exists():
                reader = None  # ranges come from the cache: no second calibration pass
        quiet = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                q.quantize_static(
                    str(self.pre),
                    str(out),
                    reader,
                    quant_format=q.QuantFormat.QDQ,
                    per_channel=True,
                    activation_type=q.QuantType.QInt8 if trt else q.QuantType.QUInt8,
                    weight_type=q.QuantType.QInt8,
                    calibrate_method=self.method,
                    nodes_to_exclude=exclude,
                    extra_options=extra,
                    **kwargs,
                )
        finally:
            logging.getLogger().setLevel(quiet)
        return out


def _pre_process(src: Path, dst: Path) -> None:
    """onnxruntime's pre-processing (optimisation, shape inference) before quantisation.

    Its symbolic shape inference gives up on the pixel unshuffle of `--unshuffle` networks
    (a Reshape to symbolic height/2 x width/2 with dynamic H, W) unless it may merge the
    symbolic dimensions it cannot prove equal (`--auto_merge`); as a last resort ONNX's own
    shape inference is enough to place Q/DQ. It runs as onnxruntime's own command in our
    temporary folder: a failed attempt leaves scratch files in its working directory and
    prints to stdout, and neither may touch the caller's process or folder.
    """
    base = [sys.executable, "-m", "onnxruntime.quantization.preprocess"]
    io_args = ["--input", str(src), "--output", str(dst)]
    last = None
    for extra in (["--auto_merge"], ["--skip_symbolic_shape", "True"]):
        last = subprocess.run(
            base + io_args + extra, cwd=dst.parent, capture_output=True, text=True
        )
        if last.returncode == 0 and dst.is_file():
            return
    detail = (last.stderr or last.stdout).strip().splitlines()[-1:] if last else []
    raise ModelError(f"onnxruntime could not prepare the graph for quantisation: {detail}")


def report_path(out: Path) -> Path:
    return Path(out).with_suffix(".calibration.json")


def calibrate(
    model: JSNet,
    out: str | Path,
    cfg: CalibrationConfig = CalibrationConfig(),
    *,
    overwrite: bool = False,
    log=None,
) -> CalibrationReport:
    """Write an INT8 (Q/DQ) ONNX of `model` whose PSNR loss is at most `cfg.max_drop`.

    Returns the report (also stored in the ONNX metadata under `calibration`, and as JSON
    beside the file: `report_path(out)`). If even the most careful search cannot meet
    `max_drop`, the best file found and its report are written, and `report.shortfall()`
    says by how much it misses.
    """
    import onnx

    _ort()
    say = log or (lambda msg: None)
    out = Path(out)
    if out.suffix != ".onnx":
        raise OptionError(f"the calibrated model is an ONNX file: {out.name} must end in .onnx")
    check_output(out, overwrite=overwrite)
    check_output(report_path(out), overwrite=overwrite, inputs=[out], what="report")
    t0 = time.perf_counter()
    deg = Degradation(
        model.task,
        cfg.sigma if model.task == "denoise" else None,
        cfg.quality if model.task == "jpeg" else None,
    )
    photos = find_photos(cfg.data)
    calib_photos, held_photos = split_photos(photos)
    calib = make_pairs(calib_photos, deg, model.colors, cfg.num_images, cfg.crop, cfg.seed)
    held = make_pairs(
        held_photos, deg, model.colors, cfg.heldout, cfg.crop, cfg.seed + 1000, center_first=True
    )
    with tempfile.TemporaryDirectory(prefix="jsnet-calib-") as tmp:
        work = Path(tmp)
        fp32 = export_onnx(model, work / "fp32.onnx")
        pre = work / "pre.onnx"
        _pre_process(fp32, pre)
        graph = onnx.load(str(pre)).graph
        nodes = [n.name for n in graph.node]
        sizes = {i.name: int(np.prod(i.dims)) for i in graph.initializer}
        conv_cost = {n.name: sizes.get(n.input[1], 0) for n in graph.node if n.op_type == "Conv"}
        convs = list(conv_cost)
        quant = Quantizer(pre, calib, cfg, work)
        base = score(fp32, held, model.scale, model.colors)
        say(f"fp32: {base:.3f} dB on {len(held)} held-out crops")
        search: list[dict] = []

        def trial(exclude: list[str], label: str) -> float:
            path = quant.write(work / "trial.onnx", exclude)
            value = score(path, held, model.scale, model.colors)
            search.append({"float": label, "psnr": round(value, 4), "drop": round(base - value, 4)})
            return value

        naive = trial([], "nothing")
        say(f"all layers int8: loss {base - naive:.3f} dB")
        kept: list[str] = []
        best = naive
        if base - naive > cfg.max_drop * cfg.margin:
            kept, best = _search(
                nodes, base, naive, cfg.max_drop * cfg.margin, trial, say, conv_cost
            )
        exclude = [n for n in nodes if any(_in_group(n, g) for g in kept)]
        final = quant.write(work / "final.onnx", exclude)
        report = CalibrationReport(
            target=cfg.target,
            method=cfg.method,
            max_drop=cfg.max_drop,
            fp32_psnr=base,
            int8_psnr=best,
            drop=base - best,
            naive_drop=base - naive,
            kept_float=kept,
            quantized_convs=sum(c not in exclude for c in convs),
            total_convs=len(convs),
            search=search,
            calibration_images=[p.name for p in calib_photos],
            heldout_images=[p.name for p in held_photos],
            seconds=round(time.perf_counter() - t0, 1),
        )
        proto = onnx.load(str(final))
        del proto.metadata_props[:]
        for k, v in model_metadata(model, "int8").items():
            proto.metadata_props.add(key=k, value=v)
        proto.metadata_props.add(key="calibration", value=report.to_json())
        save_onnx(proto, out, overwrite=overwrite)
    write_text(report_path(out), report.to_json(), overwrite=overwrite)
    return report


def _in_group(node: str, group: str) -> bool:
    return group_of(node, 0) == group or group_of(node, 1) == group


def _search(
    nodes, base, naive, max_drop, trial, say, conv_cost: dict[str, int]
) -> tuple[list[str], float]:
    """Greedy, measured: find the blocks whose float copy buys back most PSNR for the least
    float work (convolution weights per pixel, a proxy of their multiply-adds), and keep
    them in float, best value first, until the loss is within `max_drop`."""

    def members(groups: list[str]) -> list[str]:
        return [n for n in nodes if any(_in_group(n, g) for g in groups)]

    def cost(group: str) -> float:
        return 1.0 + sum(conv_cost.get(n, 0) for n in members([group]))

    top = sorted({group_of(n, 0) for n in nodes})
    gain0 = {}
    for g in top:
        gain0[g] = trial(members([g]), g) - naive
        say(f"  {g} in float: {gain0[g]:+.3f} dB")
    # Refine the (at most three) top-level blocks that matter most into their sub-blocks
    # (a cell has 13): keeping a whole cell in float costs much of the speed. The whole
    # blocks stay candidates too: part of a block's cost lies in how its parts interact.
    candidates: dict[str, float] = dict(gain0)
    for rank, g in enumerate(sorted(top, key=lambda k: -gain0[k])):
        subs = sorted({group_of(n, 1) for n in nodes if group_of(n, 0) == g})
        if len(subs) <= 1 or gain0[g] <= 0.01 or rank >= 3:
            continue
        for s in subs:
            candidates[s] = trial(members([s]), s) - naive
            say(f"  {s} in float: {candidates[s]:+.3f} dB")
    kept: list[str] = []
    best = naive
    useful = [g for g in candidates if candidates[g] > 0.005]  # above measurement noise
    for g in sorted(useful, key=lambda k: -candidates[k] / cost(k)):
        if base - best <= max_drop:
            break
        if any(g.startswith(k + ".") for k in kept):
            continue  # its whole block is already in float
        value = trial(members(kept + [g]), "+".join(kept + [g]))
        if value > best:
            kept.append(g)
            best = value
            say(f"keep {g} in float: loss {base - best:.3f} dB")
    # Parts of a block that was later kept whole need no mention of their own.
    kept = [g for g in kept if not any(g.startswith(k + ".") for k in kept)]
    return kept, best
