"""INT8 by calibration, as an ONNX file with explicit Q/DQ nodes.

Quantising every layer costs the authors' x2 network 3 dB on unseen photographs (its
CSFM, head, tail and the global residual glue are the sensitive parts; the cells barely
notice). We calibrate once (percentile ranges by default, per-channel weights), then grow
the int8 set from a float network, block by block, keeping each block only while the
loss on held-out photographs, held to a conservative estimate (`LossEstimate.held`),
stays within `max_drop`. Every decision is measured with onnxruntime on the real Q/DQ
graph, on photographs the calibration never saw, never estimated.

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

from jsnet_edge.calibration.data import (
    HELDOUT_TARGET,
    Pair,
    prepare_data,
)
from jsnet_edge.calibration.estimate import RULES, LossEstimate, estimate
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
        data: folder of photographs, split by photograph into calibration and held-out
            ones (default: the photographs shipped with the package and scikit-image's).
        num_images: calibration crops, spread over the calibration photographs.
        method: activation range estimation (minmax, percentile, entropy).
        max_drop: largest acceptable PSNR loss (dB) against fp32, held to the 90% upper
            bound of the mean loss over the held-out photographs of `data`, or without
            `data` to the worst held-out generic photograph (`calibration.estimate`).
        target: "cpu" (onnxruntime/OpenVINO) or "tensorrt".
        crop: side of the calibration crops, in network-input pixels.
        heldout: held-out photographs wanted (fewer when the folder is small: then say so).
        heldout_crop: side of the centre crop of each held-out photograph (input pixels).
        sigma, quality: degradation for denoising / JPEG models (default: the one
            `Degradation` default, sigma 25 / quality 10).
    """

    data: Path | None = None
    num_images: int = 32
    method: str = "percentile"
    max_drop: float = 0.1
    target: str = "cpu"
    crop: int = 128
    heldout: int = HELDOUT_TARGET
    heldout_crop: int = 192
    sigma: float | None = None
    quality: int | None = None
    percentile: float = 99.999
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
        if self.crop < 32 or self.heldout_crop < 32:
            raise OptionError(f"calibration crops must be at least 32 pixels, got {self.crop}")


@dataclass
class CalibrationReport:
    target: str
    method: str
    max_drop: float
    data: str
    fp32_psnr: float
    int8_psnr: float
    estimate: dict  # LossEstimate.to_dict() of the file written
    naive: dict  # the same with every layer in int8
    kept_float: list[str] = field(default_factory=list)
    quantized_convs: int = 0
    total_convs: int = 0
    search: list[dict] = field(default_factory=list)
    calibration_images: list[str] = field(default_factory=list)
    heldout_images: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    held_to: str = RULES["bound"]
    seconds: float = 0.0
    qat: dict = field(default_factory=dict)  # the fine-tuning's figures (`calibrate --qat`)

    @property
    def drop(self) -> float:
        """The estimated loss on unseen photographs: the mean over held-out ones."""
        return self.estimate["mean"]

    @property
    def bound(self) -> float:
        return self.estimate["bound"]

    @property
    def held(self) -> float:
        """The conservative figure `max_drop` was held to (`LossEstimate.held`)."""
        return self.estimate.get("held", self.bound)

    @property
    def naive_drop(self) -> float:
        return self.naive["mean"]

    def to_json(self) -> str:
        d = asdict(self)
        d.update(drop=self.drop, bound=self.bound, held=self.held, naive_drop=self.naive_drop)
        return json.dumps(d, indent=2)

    def shortfall(self) -> str | None:
        """None when the conservative estimate is within `max_drop`, else what was missed."""
        if self.held <= self.max_drop:
            return None
        return (
            f"the loss is above --max-drop {self.max_drop} dB (mean {self.drop:.3f}, held to "
            f"{self.held:.3f}: {self.held_to}); the file keeps the best trade-off found (see "
            "the report)"
        )

    def summary(self) -> str:
        kept = ", ".join(self.kept_float) or "nothing"
        est = LossEstimate(self.estimate["per_image"])
        start = ""
        if self.qat.get("ptq"):
            start = (
                f"QAT {self.qat['steps']} steps from post-training int8 at "
                f"{self.qat['ptq']['mean']:.3f} dB; "
            )
        return start + (
            f"int8 ({self.target}, {self.method}): {est.describe()}; --max-drop "
            f"{self.max_drop:g} is held to {self.held_to} ({self.held:.3f}). fp32 "
            f"{self.fp32_psnr:.2f} dB, int8 "
            f"{self.int8_psnr:.2f} dB (all layers in int8: loss {self.naive_drop:.3f}); "
            f"{self.quantized_convs}/{self.total_convs} convolutions in int8; kept in float: "
            f"{kept}"
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


def score(onnx_path: Path, pairs: list[Pair], scale: int) -> dict[str, float]:
    """PSNR per held-out photograph of an ONNX network (the protocol of `metrics.score`)."""
    backend = OnnxRuntimeBackend(onnx_path, precision="fp32")
    return {
        p.name: score_image(backend(p.input)[0].transpose(1, 2, 0), p.target, scale=scale)
        for p in pairs
    }


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
    """Write an INT8 (Q/DQ) ONNX of `model` whose PSNR loss on unseen photographs is at
    most `cfg.max_drop`, held to a conservative estimate (see `LossEstimate.held`).

    Returns the report (also stored in the ONNX metadata under `calibration`, and as JSON
    beside the file: `report_path(out)`). If no choice of int8 layers meets `max_drop`,
    the best file found and its report are written, and `report.shortfall()` says so.
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
    data = prepare_data(model, cfg, say)
    rule, warnings, (calib_photos, held_photos) = data.rule, data.notes, data.photos
    calib, held = data.calib, data.held
    with tempfile.TemporaryDirectory(prefix="jsnet-calib-") as tmp:
        work = Path(tmp)
        # one node per module step: the sensitivity search groups nodes by module name
        fp32 = export_onnx(model, work / "fp32.onnx", fold=False)
        pre = work / "pre.onnx"
        _pre_process(fp32, pre)
        graph = onnx.load(str(pre)).graph
        nodes = [n.name for n in graph.node]
        sizes = {i.name: int(np.prod(i.dims)) for i in graph.initializer}
        conv_cost = {n.name: sizes.get(n.input[1], 0) for n in graph.node if n.op_type == "Conv"}
        quant = Quantizer(pre, calib, cfg, work)
        reference = score(fp32, held, model.scale)
        say(f"fp32: {np.mean(list(reference.values())):.3f} dB on {len(held)} held-out photographs")
        search: list[dict] = []

        def trial(int8_groups: list[str] | None, label: str) -> LossEstimate:
            """The estimate with `int8_groups` in int8 (None: everything) and the rest float."""
            exclude = [] if int8_groups is None else outside(nodes, int8_groups)
            path = quant.write(work / "trial.onnx", exclude)
            est = estimate(reference, score(path, held, model.scale), rule)
            search.append({"float": label, "mean": round(est.mean, 4), "held": round(est.held, 4)})
            return est

        naive = trial(None, "nothing")
        say(f"all layers int8: {naive.describe()}")
        chosen: list[str] | None = None  # None: every layer in int8
        best = naive
        if naive.held > cfg.max_drop:
            chosen, best = grow_int8(nodes, conv_cost, cfg.max_drop, trial, say)
        exclude = [] if chosen is None else outside(nodes, chosen)
        final = quant.write(work / "final.onnx", exclude)
        quantised = estimate(reference, score(final, held, model.scale), rule)
        report = CalibrationReport(
            target=cfg.target,
            method=cfg.method,
            max_drop=cfg.max_drop,
            data=str(cfg.data) if cfg.data else "built-in photographs",
            fp32_psnr=float(np.mean(list(reference.values()))),
            int8_psnr=float(np.mean(list(reference.values()))) - quantised.mean,
            estimate=quantised.to_dict(),
            naive=naive.to_dict(),
            kept_float=float_blocks(nodes, chosen),
            quantized_convs=sum(c not in exclude for c in conv_cost),
            total_convs=len(conv_cost),
            search=search,
            calibration_images=[p.name for p in calib_photos],
            heldout_images=[p.name for p in held_photos],
            warnings=warnings,
            held_to=RULES[rule],
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


def outside(nodes: list[str], groups: list[str]) -> list[str]:
    """The nodes that belong to none of `groups` (they stay in float)."""
    return [n for n in nodes if not any(_in_group(n, g) for g in groups)]


def float_blocks(nodes: list[str], chosen: list[str] | None) -> list[str]:
    """Blocks left in float (wholly, or `partly` where some of their parts are int8)."""
    if chosen is None:
        return []
    out = []
    for g in sorted({group_of(n, 0) for n in nodes}):
        if g in chosen:
            continue
        parts = [c for c in chosen if c.startswith(g + ".")]
        out.append(f"{g} (partly)" if parts else g)
    return out


def grow_int8(
    nodes: list[str], conv_cost: dict[str, int], max_drop: float, trial, say
) -> tuple[list[str], LossEstimate]:
    """Measured and greedy, from a float network up: each block is first quantised alone
    (blocks that alone miss `max_drop` are tried part by part: a cell's operations and
    attentions, the CSFM's convolutions and adds ...), then blocks join the int8 set in
    order of float work saved per dB lost (convolution weights, a proxy of their
    multiply-adds), each kept only if the whole still meets `max_drop` on the conservative
    estimate. So the file written always keeps its promise, with as much in int8 as the
    measurements allow."""

    def cost(group: str) -> float:
        return sum(conv_cost.get(n, 0) for n in nodes if _in_group(n, group))

    alone: dict[str, LossEstimate] = {}
    for g in sorted({group_of(n, 0) for n in nodes}):
        if cost(g) == 0:
            continue  # no convolution: nothing to gain from int8
        alone[g] = trial([g], f"everything but {g}")
        say(f"  {g} alone in int8: {alone[g].mean:+.3f} dB (held {alone[g].held:.3f})")
        if alone[g].held <= max_drop:
            continue
        for s in sorted({group_of(n, 1) for n in nodes if group_of(n, 0) == g}):
            if s != g and cost(s) > 0:
                alone[s] = trial([s], f"everything but {s}")
                say(f"    {s} alone in int8: {alone[s].mean:+.3f} dB")
    usable = [u for u in alone if alone[u].held <= max_drop]
    order = sorted(usable, key=lambda u: -cost(u) / max(alone[u].mean, 1e-3))
    chosen: list[str] = []
    first = next(iter(alone.values()), None)
    best = LossEstimate({k: 0.0 for k in first.per_image}, first.rule) if first else None
    for u in order:
        if any(u.startswith(c + ".") for c in chosen):
            continue  # its whole block is already in int8
        est = trial(chosen + [u], f"everything but {'+'.join(chosen + [u])}")
        if est.held <= max_drop:
            chosen.append(u)
            best = est
            say(f"int8 {u}: {est.describe()}")
    if best is None:
        best = trial([], "everything")
    return chosen, best
