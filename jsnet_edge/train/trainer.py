"""Retraining a JSNet for one task: `train(TrainConfig(...))`.

L1 loss, Adam, cosine decay, gradient clipping, bf16 autocast (CPU with AVX-512 BF16/AMX,
or CUDA). Checkpoints every N steps so that a run stopped at any moment continues with
`resume=True`, in this session or a later one. At the end the model file and its model
card are written.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

from jsnet_edge.atomic import atomic_output
from jsnet_edge.errors import ModelError, OptionError, TrainingError
from jsnet_edge.models.genotype import Genotype, resolve_genotype
from jsnet_edge.models.network import JSNet
from jsnet_edge.tasks import check_task, task_scale
from jsnet_edge.train.checkpoint import load_checkpoint, save_checkpoint
from jsnet_edge.train.data import DegradationSpec, PatchSampler


@dataclass
class TrainConfig:
    task: str
    data: Path
    out: Path
    steps: int
    genotype: str | Genotype = "paper"
    val: Path | None = None
    batch: int = 16
    patch: int = 64
    sigma: tuple[float, float] = (25.0, 25.0)
    quality: tuple[int, int] = (10, 10)
    gray: bool = False
    init: str | None = None
    device: str = "cpu"
    precision: str = "bf16"
    lr: float = 5e-4
    min_lr: float = 1e-6
    clip: float = 10.0
    checkpoint_every: int = 250
    val_every: int = 500
    val_crop: int = 256
    val_limit: int | None = 8
    max_side: int | None = 2048
    seed: int = 0
    resume: bool = False
    command: str = ""
    threads: int | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_task(self.task)
        self.data, self.out = Path(self.data), Path(self.out)
        self.val = Path(self.val) if self.val is not None else None
        self.genotype = resolve_genotype(self.genotype)
        if self.steps < 1:
            raise OptionError(f"--steps must be at least 1, got {self.steps}")
        if self.batch < 1:
            raise OptionError(f"--batch must be at least 1, got {self.batch}")
        scale = task_scale(self.task)
        if self.patch < 16 * scale or self.patch % scale:
            raise OptionError(
                f"--patch must be a multiple of {scale} and at least {16 * scale} "
                f"for {self.task}, got {self.patch}"
            )
        if self.precision not in ("fp32", "bf16"):
            raise OptionError(f"training precision must be fp32 or bf16, not {self.precision}")
        lo, hi = self.sigma
        if not 0 <= lo <= hi <= 255:
            raise OptionError(f"sigma range must satisfy 0 <= low <= high <= 255, got {lo},{hi}")
        qlo, qhi = self.quality
        if not 1 <= qlo <= qhi <= 100:
            raise OptionError(
                f"quality range must satisfy 1 <= low <= high <= 100, got {qlo},{qhi}"
            )
        if self.out.suffix != ".safetensors":
            raise OptionError(f"--out must end in .safetensors, got {self.out.name}")
        if not self.data.is_dir():
            raise OptionError(f"training data folder {self.data} does not exist")
        if self.val is not None and not self.val.is_dir():
            raise OptionError(f"validation folder {self.val} does not exist")

    @property
    def colors(self) -> int:
        return 1 if self.gray else 3

    @property
    def checkpoint_path(self) -> Path:
        return self.out.with_name(self.out.stem + ".ckpt.safetensors")

    @property
    def log_path(self) -> Path:
        return self.out.with_name(self.out.stem + ".train.jsonl")

    @property
    def card_path(self) -> Path:
        return self.out.with_suffix(".md")

    def degradation(self) -> DegradationSpec:
        return DegradationSpec(self.task, self.sigma, self.quality)

    def describe_degradation(self) -> str:
        scale = task_scale(self.task)
        if scale > 1:
            return f"bicubic x{scale} downscale (MATLAB imresize)"
        if self.task == "denoise":
            lo, hi = self.sigma
            return (
                f"Gaussian noise, sigma {lo:g}"
                if lo == hi
                else f"Gaussian noise, sigma uniform in [{lo:g}, {hi:g}] (blind)"
            )
        lo, hi = self.quality
        return f"JPEG quality {lo}" if lo == hi else f"JPEG quality uniform in [{lo}, {hi}] (blind)"

    def to_json_dict(self) -> dict:
        d = asdict(self)
        d["genotype"] = self.genotype.to_dict()
        for k in ("data", "out", "val"):
            d[k] = str(d[k]) if d[k] is not None else None
        return d


# Convolutions that the authors train with weight normalisation (the CSFM's channel
# attentions): we do the same, and fold it away when the model is saved.
def _weight_norm_convs(model: JSNet) -> list[nn.Conv2d]:
    return [
        m
        for name, m in model.csfm.named_modules()
        if isinstance(m, nn.Conv2d) and name.startswith("ca_")
    ]


def apply_weight_norm(model: JSNet) -> None:
    for conv in _weight_norm_convs(model):
        nn.utils.parametrizations.weight_norm(conv, "weight", dim=0)


def fold_weight_norm(model: JSNet) -> None:
    for conv in _weight_norm_convs(model):
        if nn.utils.parametrize.is_parametrized(conv, "weight"):
            nn.utils.parametrize.remove_parametrizations(conv, "weight", leave_parametrized=True)


def init_from(model: JSNet, spec: str) -> int:
    """Copy every tensor of `spec` whose name and shape match; returns how many.

    `spec` is one of our model files, a zoo name, or a foreign (e.g. the authors') checkpoint;
    an RGB head initialises a gray one by summing over its input channels.
    """
    from jsnet_edge.models.modelfile import PICKLE_SUFFIXES
    from jsnet_edge.models.official import RENAMES, read_foreign_checkpoint
    from jsnet_edge.models.official import fold_weight_norm as fold_state

    if Path(spec).suffix.lower() in PICKLE_SUFFIXES:
        state = fold_state(read_foreign_checkpoint(spec))
        renamed = {}
        for k, v in state.items():
            for old, new in RENAMES:
                if k.startswith(old):
                    k = new + k[len(old) :]
                    break
            renamed[k] = v
        state = renamed
    else:
        from jsnet_edge.restorer import resolve_model

        state = resolve_model(spec).state_dict()
    own = model.state_dict()
    loaded = {}
    for k, v in state.items():
        if k not in own or "_mean." in k:
            continue
        if v.shape == own[k].shape:
            loaded[k] = v
        elif (
            k == "head.weight"
            and v.shape[1] == 3
            and own[k].shape[1] == 1
            and v.shape[0] == own[k].shape[0]
        ):
            loaded[k] = v.sum(1, keepdim=True)
    if not loaded:
        raise ModelError(f"--init {spec}: no tensor matches this network's names and shapes")
    model.load_state_dict(loaded, strict=False)
    return len(loaded)


def cosine_lr(step: int, total: int, lr: float, min_lr: float) -> float:
    warm = min(100, total // 20)
    if step < warm:
        return lr * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * min(1.0, t)))


def machine_description(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    cpu = platform.processor() or "CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


@dataclass
class TrainResult:
    out: Path
    steps: int
    val_psnr: float | None
    val_ssim: float | None
    wall_time_s: float
    card: Path


def _validate(model: JSNet, cfg: TrainConfig):
    from jsnet_edge.restorer import Restorer
    from jsnet_edge.train.evaluate import EvalConfig, evaluate

    deg = cfg.degradation()
    sigma = deg.validation_sigma() if cfg.task == "denoise" else None
    quality = deg.validation_quality() if cfg.task == "jpeg" else None
    restorer = Restorer(model, device=cfg.device, color_order="rgb")
    report = evaluate(
        restorer,
        EvalConfig(
            data=cfg.val, sigma=sigma, quality=quality, crop=cfg.val_crop, limit=cfg.val_limit
        ),
    )
    model.train()
    return report


def train(cfg: TrainConfig, progress: bool = True) -> TrainResult:
    """Train `cfg.genotype` for `cfg.task`; writes the model, its card, a log, checkpoints."""
    from tqdm import tqdm

    from jsnet_edge.models.modelfile import save_model

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.out.exists() and not cfg.resume:
        raise OptionError(f"{cfg.out} exists; choose another --out (or --resume the run)")
    if cfg.checkpoint_path.exists() and not cfg.resume:
        raise OptionError(
            f"a checkpoint of an earlier run exists ({cfg.checkpoint_path}); "
            "continue it with --resume, or delete it to start over"
        )
    if cfg.resume and not cfg.checkpoint_path.exists():
        raise OptionError(f"--resume: no checkpoint at {cfg.checkpoint_path}")
    from jsnet_edge.deploy.torch_backend import check_torch_device

    dev = check_torch_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = JSNet(cfg.genotype, task=cfg.task, colors=cfg.colors)
    init_count = init_from(model, cfg.init) if cfg.init else 0
    apply_weight_norm(model)
    model = model.to(dev, memory_format=torch.channels_last).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.999))
    sampler = PatchSampler(
        cfg.data, cfg.degradation(), cfg.colors, cfg.patch, max_side=cfg.max_side, seed=cfg.seed
    )
    start, elapsed, history = 0, 0.0, []
    commands = [{"step": 0, "command": cfg.command}]
    if cfg.resume:
        meta = load_checkpoint(cfg.checkpoint_path, model, optimizer)
        # Compared as genotypes: checkpoints from before a field was added lack it.
        if (
            meta["config"]["task"] != cfg.task
            or Genotype.from_dict(meta["config"]["genotype"]) != cfg.genotype
        ):
            raise OptionError("--resume: the checkpoint is for another task or genotype")
        start, elapsed, history = meta["step"], meta["elapsed"], meta.get("history", [])
        commands = meta.get("commands", []) + [{"step": start, "command": cfg.command}]
        sampler.set_state(meta["sampler"])
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    amp = cfg.precision == "bf16"
    log = cfg.log_path.open("a")

    def checkpoint(step: int) -> None:
        save_checkpoint(
            cfg.checkpoint_path,
            model,
            optimizer,
            {
                "step": step,
                "elapsed": elapsed,
                "sampler": sampler.state(),
                "config": cfg.to_json_dict(),
                "history": history,
                "commands": commands,
            },
        )

    bar = tqdm(
        total=cfg.steps,
        initial=start,
        disable=not progress,
        file=sys.stderr,
        unit="step",
        dynamic_ncols=True,
    )
    val_psnr = val_ssim = None
    if history:  # a finished run resumed again rewrites its model with these
        val_psnr, val_ssim = history[-1].get("val_psnr"), history[-1].get("val_ssim")
    step, tick, running, elapsed0 = start, time.perf_counter(), None, elapsed
    try:
        while step < cfg.steps:
            lr = cosine_lr(step, cfg.steps, cfg.lr, cfg.min_lr)
            for g in optimizer.param_groups:
                g["lr"] = lr
            x, y = sampler.batch(cfg.batch)
            x = torch.from_numpy(x).to(dev).contiguous(memory_format=torch.channels_last)
            y = torch.from_numpy(y).to(dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                pred = model(x)
            loss = (pred.float() - y).abs().mean()
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"training diverged: the loss became {loss.item()} at step {step}; run "
                    f"again with a lower --lr (this run: {cfg.lr:g})"
                    + (" or with --precision fp32 (bf16 autocast lost precision)" if amp else "")
                    + ", or --resume from the last checkpoint with the change"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, cfg.clip)
            optimizer.step()
            step += 1
            now = time.perf_counter()
            elapsed += now - tick
            tick = now
            value = loss.item()
            running = value if running is None else 0.98 * running + 0.02 * value
            entry = {"step": step, "loss": value, "lr": lr, "elapsed": round(elapsed, 2)}
            if cfg.val is not None and (step % cfg.val_every == 0 or step == cfg.steps):
                rep = _validate(model, cfg)
                val_psnr, val_ssim = rep.mean("psnr"), rep.mean("ssim")
                entry.update(
                    val_psnr=val_psnr, val_ssim=val_ssim, val_input_psnr=rep.mean("input_psnr")
                )
                history.append({"step": step, "val_psnr": val_psnr, "val_ssim": val_ssim})
                tick = time.perf_counter()
            log.write(json.dumps(entry) + "\n")
            bar.update(1)
            bar.set_postfix(
                loss=f"{running:.3f}",
                psnr=f"{val_psnr:.2f}" if val_psnr else "-",
                sps=f"{(step - start) / max(elapsed - elapsed0, 1e-9):.2f}",
            )
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                log.flush()
                checkpoint(step)
    except KeyboardInterrupt:
        checkpoint(step)
        log.close()
        bar.close()
        raise
    bar.close()
    log.close()
    model.eval()
    fold_weight_norm(model)
    model = model.to("cpu", memory_format=torch.contiguous_format)
    model.provenance = {
        "source": "trained by jsnet-edge train",
        "task": cfg.task,
        "degradation": cfg.describe_degradation(),
        "data": f"{cfg.data.name}/ ({len(sampler)} photographs)",
        "validation": f"{cfg.val.name}/" if cfg.val else "none",
        "init": cfg.init or "random",
        "command": cfg.command,
        "commands": commands,
        "steps": cfg.steps,
        "batch": cfg.batch,
        "patch": cfg.patch,
        "wall_time_s": round(elapsed, 1),
        "machine": machine_description(cfg.device),
        "val_psnr": val_psnr,
        "val_ssim": val_ssim,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }
    save_model(model, cfg.out, half=False)
    card = write_card(cfg, model.provenance, init_count)
    return TrainResult(cfg.out, cfg.steps, val_psnr, val_ssim, elapsed, card)


def write_card(cfg: TrainConfig, prov: dict, init_count: int) -> Path:
    val = (
        f"{prov['val_psnr']:.2f} dB PSNR / {prov['val_ssim']:.4f} SSIM on {prov['validation']}"
        if prov.get("val_psnr") is not None
        else "not measured (no --val)"
    )
    init = prov["init"] if init_count == 0 else f"{prov['init']} ({init_count} tensors matched)"
    lines = [
        f"# {cfg.out.stem}",
        "",
        "| | |",
        "| --- | --- |",
        f"| task | {cfg.task} ({'gray' if cfg.gray else 'RGB'}) |",
        f"| genotype | `{cfg.genotype.to_string()}` |",
        f"| degradation | {prov['degradation']} |",
        f"| data | {prov['data']} |",
        f"| initialisation | {init} |",
        f"| steps | {cfg.steps} (batch {cfg.batch}, patch {cfg.patch}, L1, Adam, "
        f"cosine from {cfg.lr:g}, {cfg.precision}) |",
        f"| wall time | {prov['wall_time_s'] / 3600:.2f} h |",
        f"| machine | {prov['machine']} |",
        f"| validation | {val} |",
        f"| date | {prov['date']} |",
        "",
        "Command:",
        "",
        "```",
        prov["command"] or "(library call)",
        "```",
        "",
    ]
    if len(prov.get("commands", [])) > 1:
        lines += [
            "The run was stopped and resumed (from the step it resumes at, the learning "
            "rate follows the schedule of that command's --steps: a longer run restarts "
            "it warm); the commands, with the step each started at:",
            "",
        ]
        lines += [f"- step {c['step']}: `{c['command']}`" for c in prov["commands"]]
        lines.append("")
    with atomic_output(cfg.card_path) as tmp:
        tmp.write_text("\n".join(lines))
    return cfg.card_path
