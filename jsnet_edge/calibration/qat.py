"""INT8 by quantisation-aware fine-tuning (QAT): `calibrate --qat`.

Post-training quantisation of every layer costs these small restoration networks 0.8 dB
(`denoise-rt`) to 4 dB (the authors' x2): their activations are few and wide, and one
rounding step in a thin layer is a visible error. Published 8-bit QAT of small SR CNNs
(QuickSRNet, SESR, ESPCN) loses 0.03-0.2 dB instead. So we let the network learn to live
with its quantisers:

1. NNCF (`nncf.quantize`, the PERFORMANCE preset) places fake quantisers where the
   exported graph will have Q/DQ pairs (per-channel symmetric int8 weights; activations
   symmetric, unsigned after ReLU/sigmoid; signed int8 everywhere for TensorRT, whose
   zero points must be 0) and sets their ranges from the calibration crops, two ways
   (`fakequant.RANGES`: the mean of each crop's extremes, or the extremes of them all),
   each measured on the held-out photographs: fine-tuning starts from the better. By default
   (`QATConfig.scope`, "convs") only the inputs and weights of the body's convolutions
   are quantised: quantisers on the adds, products and image-valued paths cost these
   networks most of their int8 loss (docs/benchmarks.md).
2. Weights and quantiser scales (LSQ-style: NNCF's scales are parameters) are fine-tuned
   on crops of the calibration photographs. The target is the float model's own output
   (self-distillation: no clean labels, so it works for any checkpoint), the clean photo,
   or both (`QATConfig.teacher`).
3. The quantisers export as QuantizeLinear/DequantizeLinear through our one exporter
   (`export.onnx.trace_onnx`), the file onnxruntime, OpenVINO and TensorRT run. The loss
   is measured on held-out photographs as `calibrate` measures it, and if it misses
   `max_drop`, the same measured block search keeps the fewest blocks in float (their
   Q/DQ pairs are bypassed in the graph).

Resumable: a checkpoint (safetensors; NNCF's quantiser layout as JSON) is written every
`checkpoint_every` steps and on Ctrl-C/SIGTERM; `resume=True` continues it (from the
checkpoint's step: the same crops, the same learning-rate schedule).
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from jsnet_edge.calibration.data import (
    calibration_pairs,
)
from jsnet_edge.calibration.estimate import RULES, LossEstimate, estimate
from jsnet_edge.calibration.fakequant import (
    RANGES,
    SCOPES,
    as_tensor,
    eager,
    fake_quantized,
    from_config,
    import_nncf,
    qdq_proto,
)
from jsnet_edge.calibration.qdq import QDQ, conv_costs, int8_convs, keep_float
from jsnet_edge.calibration.quantize import (
    CalibrationConfig,
    CalibrationReport,
    float_blocks,
    grow_int8,
    prepare_data,
    report_path,
    score,
)
from jsnet_edge.checkpoints import load_checkpoint, read_meta, save_checkpoint
from jsnet_edge.degradations import Degradation
from jsnet_edge.errors import OptionError, TrainingError
from jsnet_edge.export.onnx import (
    export_onnx,
    fold_mean_shift,
    model_metadata,
    save_onnx,
)
from jsnet_edge.models.network import JSNet
from jsnet_edge.outputs import check_output, write_text

FORMAT = "jsnet-edge.qat-checkpoint"
TEACHERS = ("self", "clean", "both")
LOSSES = ("l1", "db")


@dataclass(frozen=True)
class QATConfig:
    """Options of the fine-tuning (`calibrate --qat`).

    Args:
        steps: optimiser steps (on denoise-rt 1000 steps took the whole-int8 loss from
            0.45 to 0.31 dB: measured in docs/benchmarks.md).
        batch: crops per step.
        crop: side of the training crops, in network-input pixels.
        lr: Adam learning rate of weights and quantiser scales, cosine-decayed.
        teacher: "self" (the float model's output), "clean" (the clean photo) or "both".
        loss: "l1", or "db": the PSNR loss itself, per crop, 10 log10(1 + MSE(int8, float)
            / (MSE(float, clean) + 1)): smooth, high-PSNR crops, where int8 noise costs
            the most dB, weigh as much as textured ones (with L1 they hardly count).
        checkpoint_every: steps between checkpoints.
        scope: what is int8 (`fakequant.float_ops`): "convs" (the inputs and weights of
            the body's convolutions: TensorRT's and ModelOpt's placement, the least loss),
            "body" (NNCF's placement for OpenVINO without the layers that read or write
            image values) or "all" (NNCF's placement everywhere).
    """

    steps: int = 1000
    batch: int = 8
    crop: int = 64
    lr: float = 5e-4
    teacher: str = "self"
    loss: str = "db"
    checkpoint_every: int = 100
    scope: str = "convs"

    def __post_init__(self) -> None:
        if self.teacher not in TEACHERS:
            raise OptionError(
                f"--teacher must be one of {', '.join(TEACHERS)}, not {self.teacher!r}"
            )
        if self.scope not in SCOPES:
            raise OptionError(f"--scope must be one of {', '.join(SCOPES)}, not {self.scope!r}")
        if self.loss not in LOSSES:
            raise OptionError(f"--loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        if self.steps < 0 or self.batch < 1 or self.checkpoint_every < 1:
            raise OptionError("--steps must be >= 0, the batch and checkpoint interval >= 1")
        if self.crop < 16:
            raise OptionError(f"QAT crops must be at least 16 pixels, got {self.crop}")
        if not 0 < self.lr < 1:
            raise OptionError(f"--lr must be in (0, 1), got {self.lr}")


def checkpoint_path(out: str | Path) -> Path:
    return Path(out).with_suffix(".qat.safetensors")


def _batch(photos, deg: Degradation, qcfg: QATConfig, step: int, seed: int, multiple: int):
    """The crops of step `step`: a function of the step, so a resumed run sees the same."""
    seed = seed + 7919 * (step + 1)
    pairs = calibration_pairs(photos, deg, qcfg.batch, qcfg.crop, seed, multiple)
    x = as_tensor(np.concatenate([p.input for p in pairs]))
    clean = [p.target[:, :, None] if p.target.ndim == 2 else p.target for p in pairs]
    y = as_tensor(np.stack([c.transpose(2, 0, 1) for c in clean]))
    return x, y


def _lr(step: int, qcfg: QATConfig) -> float:
    warm = min(50, max(1, qcfg.steps // 20))
    if step < warm:
        return qcfg.lr * (step + 1) / warm
    t = (step - warm) / max(1, qcfg.steps - warm)
    return qcfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def _loss(pred, target, ref, clean, kind: str) -> torch.Tensor:
    if kind == "l1":
        return (pred - target).abs().mean()
    err = (pred - target).pow(2).mean(dim=(1, 2, 3))
    base = (ref - clean).pow(2).mean(dim=(1, 2, 3))  # the float model's own error
    return (10 * torch.log10(1 + err / (base + 1))).mean()


def train_step(qm, teacher_net, photos, deg, qcfg: QATConfig, step: int, seed: int, optimizer):
    """One fine-tuning step of a fake-quantised network `qm` (any library's) towards
    `qcfg.teacher`: the crops and learning rate are functions of `step`. Returns the loss."""
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for g in optimizer.param_groups:
        g["lr"] = _lr(step, qcfg)
    x, y = _batch(photos, deg, qcfg, step, seed, teacher_net.size_multiple)
    pred = qm(x)
    with torch.no_grad():
        ref = teacher_net(x)
    loss = 0.0
    for target, used in ((ref, ("self", "both")), (y, ("clean", "both"))):
        if qcfg.teacher in used:
            loss = loss + _loss(pred, target, ref, y, qcfg.loss)
    if not torch.isfinite(loss):
        raise TrainingError(
            f"QAT diverged at step {step} (loss {loss.item()}); run again with a "
            f"lower --lr (this run: {qcfg.lr:g})"
        )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    return float(loss.item())


def _finetune(qm, teacher_net, photos, deg, cfg, qcfg, ckpt, start, optimizer, meta, say):
    """The loop from `start` to `qcfg.steps`; checkpoints on schedule and on Ctrl-C."""
    qm.train()
    t0, running = time.perf_counter(), None
    unit = "dB (PSNR loss per crop)" if qcfg.loss == "db" else "(L1, gray levels 0..255)"
    step = start
    try:
        while step < qcfg.steps:
            value = train_step(qm, teacher_net, photos, deg, qcfg, step, cfg.seed, optimizer)
            step += 1
            running = value if running is None else 0.95 * running + 0.05 * value
            meta["loss"] = round(running, 4)
            meta["step"] = step
            if step % qcfg.checkpoint_every == 0 or step == qcfg.steps:
                save_checkpoint(ckpt, qm, optimizer, meta, fmt=FORMAT)
                rate = (step - start) / max(time.perf_counter() - t0, 1e-9)
                say(
                    f"QAT step {step}/{qcfg.steps}: loss {running:.3f} {unit}, "
                    f"{rate:.1f} steps/s, about {(qcfg.steps - step) / max(rate, 1e-9):.0f} s left"
                )
    except KeyboardInterrupt:
        meta["step"] = step
        save_checkpoint(ckpt, qm, optimizer, meta, fmt=FORMAT)
        say(f"QAT stopped at step {step}: checkpoint {ckpt}; --resume continues it")
        raise
    qm.eval()


def qat(
    model: JSNet,
    out: str | Path,
    cfg: CalibrationConfig | None = None,
    qcfg: QATConfig | None = None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    log=None,
) -> CalibrationReport:
    """Fine-tune `model` with fake quantisation and write its INT8 Q/DQ ONNX to `out`.

    The photographs, held-out estimate, `max_drop` rule, report and metadata are those of
    `calibrate` (`cfg`); `qcfg` sets the fine-tuning. Returns the report (`report.qat`
    holds the fine-tuning's own figures, the post-training loss it started from among
    them).
    """
    import onnx

    cfg, qcfg = cfg or CalibrationConfig(), qcfg or QATConfig()
    say = log or (lambda msg: None)
    out = Path(out)
    if out.suffix != ".onnx":
        raise OptionError(f"the calibrated model is an ONNX file: {out.name} must end in .onnx")
    check_output(out, overwrite=overwrite)
    check_output(report_path(out), overwrite=overwrite, inputs=[out], what="report")
    if cfg.method != CalibrationConfig.method:
        raise OptionError(
            f"--method {cfg.method} sets the ranges of post-training calibration; --qat "
            "measures its own starting ranges and trains them: drop --method"
        )
    ckpt = checkpoint_path(out)
    if resume and not ckpt.is_file():
        raise OptionError(f"--resume: no QAT checkpoint {ckpt} to continue; run without it")
    if ckpt.is_file() and not resume and not overwrite:
        raise OptionError(
            f"{ckpt} holds an unfinished QAT run: pass --resume to continue it, or "
            "--overwrite to start again"
        )
    import_nncf()
    t0 = time.perf_counter()
    data = prepare_data(model, cfg, say)
    deg, rule, notes, (calib_photos, held_photos) = data.deg, data.rule, data.notes, data.photos
    calib, held = data.calib, data.held
    folded = fold_mean_shift(model)
    teacher_net = fold_mean_shift(model).eval().requires_grad_(False)
    # What a resumed run must share with the one it continues (the checkpoint interval
    # changes nothing in the result, so it may differ).
    fine_tuning = {k: v for k, v in asdict(qcfg).items() if k != "checkpoint_every"}
    settings = {"calibration": _jsonable(asdict(cfg)), "qat": fine_tuning}
    with tempfile.TemporaryDirectory(prefix="jsnet-qat-") as tmp:
        work = Path(tmp)
        fp32 = export_onnx(model, work / "fp32.onnx")
        reference = score(fp32, held, model.scale)
        say(f"fp32: {np.mean(list(reference.values())):.3f} dB on {len(held)} held-out photographs")

        def measure(proto, label: str, groups=None) -> LossEstimate:
            path = work / f"{label}.onnx"
            onnx.save(keep_float(proto, groups), str(path))
            return estimate(reference, score(path, held, model.scale), rule)

        if resume:
            meta = read_meta(ckpt, FORMAT)
            if meta.get("settings") != settings:
                raise OptionError(
                    f"{ckpt} was made with other options ({meta.get('settings')}); pass the "
                    "same options to --resume, or --overwrite to start again"
                )
            qm = from_config(folded, meta["nncf"])
        else:
            # Both range starts, measured on the held-out photographs: the better one is
            # where fine-tuning starts (neither wins on every network: fakequant.RANGES).
            starts = {}
            for ranges in RANGES:
                candidate = fake_quantized(
                    copy.deepcopy(folded),
                    [p.input for p in calib],
                    cfg.target,
                    scope=qcfg.scope,
                    ranges=ranges,
                )
                loss = measure(qdq_proto(candidate, model), f"ptq-{ranges}")
                say(f"NNCF post-training int8, {ranges} ranges: {loss.describe()}")
                starts[ranges] = (candidate, loss)
            losses = {r: loss.mean for r, (_, loss) in starts.items()}
            ranges = min(losses, key=losses.get)
            qm, ptq = starts.pop(ranges)
            del starts  # the other candidate: a whole network's worth of memory
            say(f"QAT starts from the {ranges} ranges")
            meta = {
                "settings": settings,
                "nncf": import_nncf().torch.get_config(qm),
                "ptq": ptq.to_dict(),
                "ranges": ranges,
                "starts": losses,
                "step": 0,
            }
        params = [p for p in qm.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=qcfg.lr)
        if resume:
            meta = load_checkpoint(ckpt, qm, optimizer, fmt=FORMAT)
            say(f"resuming QAT at step {meta['step']}/{qcfg.steps}")
        train_t0 = time.perf_counter()
        with eager():
            _finetune(
                qm,
                teacher_net,
                calib_photos,
                deg,
                cfg,
                qcfg,
                ckpt,
                meta["step"],
                optimizer,
                meta,
                say,
            )
        proto = qdq_proto(qm, model)
        naive = measure(proto, "all")
        say(f"after QAT, all layers int8: {naive.describe()}")
        ops = [n.name for n in proto.graph.node if n.op_type not in QDQ + ("Constant",)]
        search = [{"float": "nothing", "mean": round(naive.mean, 4), "held": round(naive.held, 4)}]
        chosen: list[str] | None = None
        final = naive
        if naive.held > cfg.max_drop:

            def trial(groups: list[str] | None, label: str) -> LossEstimate:
                est = measure(proto, "trial", groups)
                search.append(
                    {"float": label, "mean": round(est.mean, 4), "held": round(est.held, 4)}
                )
                return est

            chosen, _ = grow_int8(ops, conv_costs(proto), cfg.max_drop, trial, say)
            final = measure(proto, "final", chosen)
            if final.held > naive.held:
                # Fine-tuned weights are co-adapted to their quantisers: in float they are
                # not the float model's weights, and a network mostly in float can lose
                # more than the whole one in int8. Then the whole int8 network it is.
                say(
                    f"mixed precision after QAT is worse ({final.mean:.3f} dB) than all int8: "
                    "keeping every layer in int8"
                )
                chosen, final = None, naive
        result = keep_float(proto, chosen)
        fp32_psnr = float(np.mean(list(reference.values())))
        report = CalibrationReport(
            target=cfg.target,
            method=f"qat ({meta.get('ranges', 'mean-minmax')} start)",
            max_drop=cfg.max_drop,
            data=str(cfg.data) if cfg.data else "built-in photographs",
            fp32_psnr=fp32_psnr,
            int8_psnr=fp32_psnr - final.mean,
            estimate=final.to_dict(),
            naive=naive.to_dict(),
            kept_float=float_blocks(ops, chosen),
            quantized_convs=int8_convs(result),
            total_convs=sum(n.op_type == "Conv" for n in result.graph.node),
            search=search,
            calibration_images=[p.name for p in calib_photos],
            heldout_images=[p.name for p in held_photos],
            warnings=notes,
            held_to=RULES[rule],
            seconds=round(time.perf_counter() - t0, 1),
            qat={
                "library": f"nncf {import_nncf().__version__}",
                "steps": qcfg.steps,
                "batch": qcfg.batch,
                "crop": qcfg.crop,
                "lr": qcfg.lr,
                "teacher": qcfg.teacher,
                "loss": qcfg.loss,
                "scope": qcfg.scope,
                "final_loss": meta.get("loss"),
                "ptq": meta.get("ptq"),
                "ranges": meta.get("ranges"),
                "starts": meta.get("starts"),
                "seconds": round(time.perf_counter() - train_t0, 1),
            },
        )
        del result.metadata_props[:]
        for k, v in model_metadata(model, "int8").items():
            result.metadata_props.add(key=k, value=v)
        result.metadata_props.add(key="calibration", value=report.to_json())
        onnx.checker.check_model(result)
        save_onnx(result, out, overwrite=overwrite)
    write_text(report_path(out), report.to_json(), overwrite=overwrite)
    ckpt.unlink(missing_ok=True)  # the run is finished: its checkpoint has served
    return report


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, default=str))
