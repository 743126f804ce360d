"""Retraining a JSNet for one task: `train(TrainConfig(...))`.

L1 loss, Adam, cosine decay, gradient clipping, bf16 autocast (CPU with AVX-512 BF16/AMX,
or CUDA). Checkpoints every N steps so that a run stopped at any moment continues with
`resume=True`, in this session or a later one. At the end the model file and its model
card are written.

A run is four steps: check the paths (`_check_paths`), build the model, optimiser and data
(`_setup`, which also restores a checkpoint), optimise (`_optimise`), and write the model
and its card (`_publish`).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

from jsnet_edge.checkpoints import load_checkpoint, save_checkpoint
from jsnet_edge.degradations import Degradation
from jsnet_edge.devices import check_torch_device, machine_description, torch_threads
from jsnet_edge.errors import ModelError, OptionError, OutputWriteError, TrainingError
from jsnet_edge.models.fileinfo import PICKLE_SUFFIXES
from jsnet_edge.models.genotype import Genotype, resolve_genotype
from jsnet_edge.models.modelfile import save_model
from jsnet_edge.models.network import JSNet
from jsnet_edge.models.official import foreign_state_dict
from jsnet_edge.models.resolve import resolve_model
from jsnet_edge.models.weight_norm import apply_weight_norm, remove_weight_norm
from jsnet_edge.outputs import check_output, write_error_message
from jsnet_edge.restorer import Restorer
from jsnet_edge.tasks import check_task, task_scale
from jsnet_edge.train.card import write_card
from jsnet_edge.train.clips import ClipSampler, run_batch
from jsnet_edge.train.data import PatchSampler
from jsnet_edge.train.evaluate import EvalConfig, evaluate


@dataclass(frozen=True)
class TrainConfig:
    """Options of `train`, checked when made (no disk access: `train` checks the paths).

    Args:
        task: sr-x2, sr-x3, sr-x4, denoise or jpeg.
        data, val: folders of clean training / held-out photographs.
        out: the model file (.safetensors); the checkpoint, log and card go beside it.
        steps: optimisation steps (a resumed run goes on to this count).
        genotype: a `Genotype`, "paper", a compact string or a genotype.json path.
        sigma, quality: noise sigma / JPEG quality, one value or a (low, high) range for a
            blind model; None: the default (see `Degradation`).
        init: start from compatible weights (model file, zoo name, foreign checkpoint).
        threads: torch threads for the run (restored afterwards); None: unchanged.
        scales: training photographs are also used downscaled by these factors (see
            `PatchSampler`).
        noise: denoising: "gaussian" or "camera" (see `Degradation`).
        workers: processes that prepare batches ahead of the training step (their
            degradations off its path); 0: prepared in the step itself.
        clip_frames: recurrent genotypes train on moving clips of this many frames
            (`jsnet_edge.train.clips`), the loss over every frame; each clip is a batch item.
    """

    task: str
    data: Path
    out: Path
    steps: int
    genotype: str | Genotype = "paper"
    val: Path | None = None
    batch: int = 16
    patch: int = 64
    sigma: float | tuple[float, float] | None = None
    quality: int | tuple[int, int] | None = None
    noise: str = "gaussian"
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
    scales: tuple[float, ...] = (1.0,)
    workers: int = 0
    clip_frames: int = 5
    seed: int = 0
    resume: bool = False
    command: str = ""
    threads: int | None = None

    def __post_init__(self) -> None:
        check_task(self.task)
        self.degradation  # noqa: B018 - checks sigma and quality against the task
        for name in ("steps", "batch", "checkpoint_every", "val_every"):
            if getattr(self, name) < 1:
                raise OptionError(f"--{name.replace('_', '-')} must be at least 1")
        scale = task_scale(self.task)
        if self.patch < 16 * scale or self.patch % scale:
            raise OptionError(
                f"--patch must be a multiple of {scale} and at least {16 * scale} "
                f"for {self.task}, got {self.patch}"
            )
        if self.precision not in ("fp32", "bf16"):
            raise OptionError(f"training precision must be fp32 or bf16, not {self.precision}")
        if not (math.isfinite(self.lr) and self.lr > 0) or self.min_lr < 0:
            raise OptionError(f"--lr must be a positive number, got {self.lr:g}")
        if self.clip <= 0:
            raise OptionError(f"the gradient clip must be positive, got {self.clip:g}")
        if Path(self.out).suffix != ".safetensors":
            raise OptionError(f"--out must end in .safetensors, got {Path(self.out).name}")
        if self.threads is not None and self.threads < 1:
            raise OptionError(f"--threads must be at least 1, got {self.threads}")
        if self.clip_frames < 2:
            raise OptionError(f"--clip-frames must be at least 2, got {self.clip_frames}")
        if self.workers < 0:
            raise OptionError(f"--workers must be 0 or more, got {self.workers}")
        if not self.scales or any(not 0 < f <= 1 for f in self.scales):
            raise OptionError(f"--scales must be factors in (0, 1], got {self.scales}")
        if self.max_side is not None and self.max_side < self.patch:
            raise OptionError(f"--max-side must be at least the patch size ({self.patch})")

    @property
    def degradation(self) -> Degradation:
        return Degradation(self.task, self.sigma, self.quality, self.noise)

    @property
    def colors(self) -> int:
        return 1 if self.gray else 3

    @property
    def out_path(self) -> Path:
        return Path(self.out)

    @property
    def checkpoint_path(self) -> Path:
        return self.out_path.with_name(self.out_path.stem + ".ckpt.safetensors")

    @property
    def log_path(self) -> Path:
        return self.out_path.with_name(self.out_path.stem + ".train.jsonl")

    @property
    def card_path(self) -> Path:
        return self.out_path.with_suffix(".md")

    def to_json_dict(self, genotype: Genotype) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["genotype"] = genotype.to_dict()
        d["sigma"], d["quality"] = self.degradation.sigma_range, self.degradation.quality_range
        for k in ("data", "out", "val"):
            d[k] = str(d[k]) if d[k] is not None else None
        return d


def init_from(model: JSNet, spec: str) -> int:
    """Copy every tensor of `spec` whose name and shape match; returns how many.

    `spec` is one of our model files, a zoo name, or a foreign (e.g. the authors') checkpoint;
    an RGB head initialises a gray one by summing over its input channels, a single-frame
    head a recurrent one (the previous frame's weights at zero).
    """
    if Path(spec).suffix.lower() in PICKLE_SUFFIXES:
        state = foreign_state_dict(spec)
    else:
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
        elif k == "head.weight" and own[k].shape[1] == 2 * v.shape[1] and model.genotype.recurrent:
            # a single-frame head starts a recurrent one: the previous frame's half at zero,
            # so it starts as exactly the network it was made from (starting from the mean
            # of the two frames was measured to lose the single frame's quality, which a
            # small network does not win back in thousands of steps)
            loaded[k] = torch.cat([v, torch.zeros_like(v)], 1)
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


@dataclass
class TrainResult:
    out: Path
    steps: int
    val_psnr: float | None
    val_ssim: float | None
    wall_time_s: float
    card: Path


@dataclass
class _State:
    """A run in progress: what is optimised, and what a checkpoint must carry."""

    cfg: TrainConfig
    genotype: Genotype
    device: torch.device
    model: JSNet
    optimizer: torch.optim.Optimizer
    sampler: PatchSampler
    init_count: int
    step: int = 0
    elapsed: float = 0.0
    history: list[dict] = field(default_factory=list)
    commands: list[dict] = field(default_factory=list)

    def checkpoint(self) -> None:
        save_checkpoint(
            self.cfg.checkpoint_path,
            self.model,
            self.optimizer,
            {
                "step": self.step,
                "elapsed": self.elapsed,
                "sampler": {"index": self.step},  # batches are numbered (`batch_at`)
                "config": self.cfg.to_json_dict(self.genotype),
                "history": self.history,
                "commands": self.commands,
            },
        )

    @property
    def last_validation(self) -> tuple[float | None, float | None]:
        if not self.history:
            return None, None
        return self.history[-1].get("val_psnr"), self.history[-1].get("val_ssim")


def train(cfg: TrainConfig, progress: bool = True) -> TrainResult:
    """Train `cfg.genotype` for `cfg.task`; writes the model, its card, a log, checkpoints."""
    _check_paths(cfg)
    with torch_threads(cfg.threads):
        state = _setup(cfg)
        _optimise(state, progress)
        return _publish(state)


def _check_paths(cfg: TrainConfig) -> None:
    if not Path(cfg.data).is_dir():
        raise OptionError(f"training data folder {cfg.data} does not exist")
    if cfg.val is not None and not Path(cfg.val).is_dir():
        raise OptionError(f"validation folder {cfg.val} does not exist")
    if cfg.out_path.exists() and not cfg.resume:
        raise OptionError(f"{cfg.out} exists; choose another --out (or --resume the run)")
    if cfg.checkpoint_path.exists() and not cfg.resume:
        raise OptionError(
            f"a checkpoint of an earlier run exists ({cfg.checkpoint_path}); "
            "continue it with --resume, or delete it to start over"
        )
    if cfg.resume and not cfg.checkpoint_path.exists():
        raise OptionError(f"--resume: no checkpoint at {cfg.checkpoint_path}")
    for path in (cfg.out_path, cfg.checkpoint_path, cfg.log_path, cfg.card_path):
        check_output(path, overwrite=True)  # writable, before hours of work


def _setup(cfg: TrainConfig) -> _State:
    genotype = resolve_genotype(cfg.genotype)
    dev = check_torch_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = JSNet(genotype, task=cfg.task, colors=cfg.colors)
    init_count = init_from(model, cfg.init) if cfg.init else 0
    apply_weight_norm(model)
    model = model.to(dev, memory_format=torch.channels_last).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.999))
    clips = {"frames": cfg.clip_frames} if genotype.recurrent else {}
    sampler = (ClipSampler if genotype.recurrent else PatchSampler)(
        cfg.data,
        cfg.degradation,
        cfg.colors,
        cfg.patch,
        max_side=cfg.max_side,
        scales=tuple(cfg.scales),
        seed=cfg.seed,
        **clips,
    )
    state = _State(cfg, genotype, dev, model, optimizer, sampler, init_count)
    state.commands = [{"step": 0, "command": cfg.command}]
    if cfg.resume:
        meta = load_checkpoint(cfg.checkpoint_path, model, optimizer)
        # Compared as genotypes: checkpoints from before a field was added lack it.
        if (
            meta["config"]["task"] != cfg.task
            or Genotype.from_dict(meta["config"]["genotype"]) != genotype
        ):
            raise OptionError("--resume: the checkpoint is for another task or genotype")
        state.step, state.elapsed = meta["step"], meta["elapsed"]
        state.history = meta.get("history", [])
        state.commands = meta.get("commands", []) + [{"step": state.step, "command": cfg.command}]
    cfg.out_path.parent.mkdir(parents=True, exist_ok=True)
    return state


def _validate(state: _State):
    cfg = state.cfg
    v = cfg.degradation.for_validation()
    sigma = v.sigma_range[0] if cfg.task == "denoise" else None
    quality = v.quality_range[0] if cfg.task == "jpeg" else None
    if cfg.noise == "camera":
        sigma = v.sigma_range
    restorer = Restorer(
        state.model, backend="torch", device=cfg.device, precision=None, color_order="rgb"
    )
    report = evaluate(
        restorer,
        EvalConfig(
            data=cfg.val,
            sigma=sigma,
            quality=quality,
            noise=cfg.noise,
            crop=cfg.val_crop,
            limit=cfg.val_limit,
        ),
    )
    state.model.train()
    return report


def _optimise(state: _State, progress: bool) -> None:
    """The loop, from `state.step` to `cfg.steps`: checkpoints every `checkpoint_every`
    steps and on Ctrl-C / SIGTERM, so that `--resume` continues exactly."""
    from tqdm import tqdm

    cfg, model, optimizer, dev = state.cfg, state.model, state.optimizer, state.device
    params = [p for p in model.parameters() if p.requires_grad]
    amp = cfg.precision == "bf16"
    start, elapsed0 = state.step, state.elapsed
    val_psnr, _ = state.last_validation
    bar = tqdm(
        total=cfg.steps,
        initial=start,
        disable=not progress,
        file=sys.stderr,
        unit="step",
        dynamic_ncols=True,
    )
    tick, running = time.perf_counter(), None
    batches = state.sampler.stream(state.step, cfg.batch, cfg.workers)
    log_existed = cfg.log_path.exists()
    try:
        with cfg.log_path.open("a") as log:
            while state.step < cfg.steps:
                lr = cosine_lr(state.step, cfg.steps, cfg.lr, cfg.min_lr)
                for g in optimizer.param_groups:
                    g["lr"] = lr
                x, y = next(batches)
                x, y = torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                    pred = run_batch(model, x)
                loss = (pred.float() - y).abs().mean()
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"training diverged: the loss became {loss.item()} at step "
                        f"{state.step}; run again with a lower --lr (this run: {cfg.lr:g})"
                        + (
                            " or with --precision fp32 (bf16 autocast lost precision)"
                            if amp
                            else ""
                        )
                        + ", or --resume from the last checkpoint with the change"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(params, cfg.clip)
                optimizer.step()
                state.step += 1
                now = time.perf_counter()
                state.elapsed += now - tick
                tick = now
                value = loss.item()
                running = value if running is None else 0.98 * running + 0.02 * value
                entry = {
                    "step": state.step,
                    "loss": value,
                    "lr": lr,
                    "elapsed": round(state.elapsed, 2),
                }
                if cfg.val is not None and (
                    state.step % cfg.val_every == 0 or state.step == cfg.steps
                ):
                    rep = _validate(state)
                    val_psnr, val_ssim = rep.mean("psnr"), rep.mean("ssim")
                    entry.update(
                        val_psnr=val_psnr, val_ssim=val_ssim, val_input_psnr=rep.mean("input_psnr")
                    )
                    state.history.append(
                        {"step": state.step, "val_psnr": val_psnr, "val_ssim": val_ssim}
                    )
                    tick = time.perf_counter()
                log.write(json.dumps(entry) + "\n")
                log.flush()  # a full disk is found at this step, not after the training
                bar.update(1)
                bar.set_postfix(
                    loss=f"{running:.3f}",
                    psnr=f"{val_psnr:.2f}" if val_psnr else "-",
                    sps=f"{(state.step - start) / max(state.elapsed - elapsed0, 1e-9):.2f}",
                )
                if state.step % cfg.checkpoint_every == 0 or state.step == cfg.steps:
                    log.flush()
                    state.checkpoint()
    except KeyboardInterrupt:
        state.checkpoint()
        raise
    except OSError as e:  # the log or a checkpoint could not be written: the disk
        if not log_existed and cfg.log_path.is_file() and cfg.log_path.stat().st_size == 0:
            cfg.log_path.unlink()
        where = Path(e.filename) if isinstance(e.filename, str) else cfg.log_path
        raise OutputWriteError(write_error_message(where, e)) from None
    finally:
        batches.close()  # stops the prefetch workers
        bar.close()


def _publish(state: _State) -> TrainResult:
    """The model (weight norm folded, on the CPU) with its provenance, and its card."""
    cfg = state.cfg
    model = state.model.eval()
    remove_weight_norm(model)
    model = model.to("cpu", memory_format=torch.contiguous_format)
    val_psnr, val_ssim = state.last_validation
    model.provenance = {
        "source": "trained by jsnet-edge train",
        "task": cfg.task,
        "degradation": cfg.degradation.describe()
        + (
            f", on moving clips of {cfg.clip_frames} frames (pans, moving objects)"
            if state.genotype.recurrent
            else ""
        ),
        "data": f"{Path(cfg.data).name}/ ({len(state.sampler)} photographs)",
        "validation": f"{Path(cfg.val).name}/" if cfg.val else "none",
        "init": cfg.init or "random",
        "command": cfg.command,
        "commands": state.commands,
        "steps": cfg.steps,
        "batch": cfg.batch,
        "patch": cfg.patch,
        "scales": list(cfg.scales),
        "wall_time_s": round(state.elapsed, 1),
        "machine": machine_description(cfg.device),
        "val_psnr": val_psnr,
        "val_ssim": val_ssim,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }
    save_model(model, cfg.out_path, half=False)
    card = write_card(
        cfg.card_path,
        model.provenance,
        genotype=state.genotype.to_string(),
        gray=cfg.gray,
        init_count=state.init_count,
        settings=f"batch {cfg.batch}, patch {cfg.patch}, L1, Adam, cosine from {cfg.lr:g}, "
        f"{cfg.precision}",
    )
    return TrainResult(cfg.out_path, cfg.steps, val_psnr, val_ssim, state.elapsed, card)
