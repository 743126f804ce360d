"""`search(SearchConfig(...))`: hardware-aware joint operation/attention/size search.

1. The smallest network of the space is measured first: a budget below it is refused.
2. The latency table of the device and backend is loaded or measured, and its correction
   fitted on random whole networks (`profile.validate`).
3. The supernet is trained bilevel, first-order DARTS (the architecture gradient ignores how
   the weights would move, as DARTS' first-order variant and PC-DARTS do): network weights
   on training patches, architecture weights on validation patches, L1 loss plus a latency
   term; the architecture steps start after a weights-only warm-up, which a sweep over
   several budgets shares.
4. The budget is a promise: the derived network is built, exported and measured on the
   target backend, and while it is over budget the choice that saves most latency per unit
   of architecture weight given up is given up, until the measurement fits.
5. Each result is fine-tuned for a few steps (`jsnet_edge.train.trainer.train`) to put a
   PSNR beside its latency, and the paper's network is measured (and fine-tuned) the same
   way for the Pareto plot.

The latency term is a hinge on the ratio to the budget, lambda * relu(E[LAT] / target - 1),
target = budget * (1 - margin): zero inside the budget, so among affordable architectures the
task loss alone decides (the goal is the best network at the budget, not the fastest), a
constant push per unit of relative overshoot when over it (unlike the log form, whose
gradient lambda / E[LAT] weakens exactly when the supernet is far too slow, early in the
search), and dimensionless, so one lambda serves budgets from 1 ms to 1 s. The task loss is
the trainer's L1 on the 0..255 scale, so lambda reads in grey levels per unit of relative
overshoot.
"""

from __future__ import annotations

import copy
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from jsnet_edge.degradations import Degradation
from jsnet_edge.devices import torch_threads
from jsnet_edge.errors import OptionError
from jsnet_edge.models.genotype import PAPER, Genotype
from jsnet_edge.outputs import write_json
from jsnet_edge.search.budget import ArchWeights, fit_to_budget, grow_within_budget
from jsnet_edge.search.config import SearchConfig, budget_label
from jsnet_edge.search.latency import ExpectedLatency, LatencyTable
from jsnet_edge.search.profile import ProfileResult, load_or_measure, validate
from jsnet_edge.search.report import (
    BudgetResult,
    SearchResult,
    plot_pareto,
    result_dict,
    write_genotype,
)
from jsnet_edge.search.supernet import SuperNet
from jsnet_edge.search.timing import time_network
from jsnet_edge.tasks import task_scale
from jsnet_edge.train.data import PatchSampler
from jsnet_edge.train.trainer import TrainConfig, train


def latency_penalty(expected_ms: torch.Tensor, target_ms: float, weight: float) -> torch.Tensor:
    """lambda * relu(E[LAT] / target - 1) (see the module docstring for why this form)."""
    return weight * torch.relu(expected_ms / target_ms - 1.0)


def _l1(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (pred.float() - y).abs().mean()


class _Batches:
    """Training and validation patches (two folders, or one folder with two seeds)."""

    def __init__(self, cfg: SearchConfig) -> None:
        spec = Degradation(cfg.task, noise=cfg.noise)
        self.train = PatchSampler(cfg.data, spec, cfg.colors, cfg.patch, seed=cfg.seed)
        self.val = PatchSampler(
            cfg.val or cfg.data, spec, cfg.colors, cfg.patch, seed=cfg.seed + 1000
        )
        self.batch = cfg.batch
        self.device = torch.device(cfg.train_device)

    def _tensors(self, pair) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(pair[0]).to(self.device), torch.from_numpy(pair[1]).to(self.device)

    def train_batch(self):
        return self._tensors(self.train.batch(self.batch))

    def val_batch(self):
        return self._tensors(self.val.batch(self.batch))


def _weight_step(net: SuperNet, opt: torch.optim.Optimizer, batches: _Batches, amp: bool) -> float:
    x, y = batches.train_batch()
    with torch.autocast(batches.device.type, dtype=torch.bfloat16, enabled=amp):
        pred = net(x)
    loss = _l1(pred, y)
    if not torch.isfinite(loss):
        raise RuntimeError("the supernet loss diverged; lower --lr")
    net.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(net.weights(), 10.0)
    opt.step()
    net.zero_grad(set_to_none=True)
    return loss.item()


def _arch_step(
    net: SuperNet,
    opt: torch.optim.Optimizer,
    batches: _Batches,
    expected: ExpectedLatency,
    target_ms: float,
    weight: float,
    amp: bool,
) -> tuple[float, float, float]:
    x, y = batches.val_batch()
    with torch.autocast(batches.device.type, dtype=torch.bfloat16, enabled=amp):
        pred = net(x)
    task = _l1(pred, y)
    lat = expected(net.alpha_op, net.alpha_att, net.alpha_depth, net.alpha_width, net.alpha_csfm)
    penalty = latency_penalty(lat, target_ms, weight)
    net.zero_grad(set_to_none=True)
    (task + penalty).backward()
    opt.step()
    net.zero_grad(set_to_none=True)
    return task.item(), penalty.item(), lat.item()


def _snapshot(
    net: SuperNet,
    step: int,
    phase: str,
    expected: ExpectedLatency,
    max_skip: int | None = None,
    **extra,
) -> dict:
    with torch.no_grad():
        e = float(
            expected(net.alpha_op, net.alpha_att, net.alpha_depth, net.alpha_width, net.alpha_csfm)
        )
    return {
        "step": step,
        "phase": phase,
        "expected_ms": round(e, 4),
        "derived": net.derive(max_skip).to_string(),
        **extra,
        "weights": net.snapshot(),
    }


def _finetune(cfg: SearchConfig, g: Genotype, folder: Path) -> tuple[float | None, Path]:
    out = folder / "model.safetensors"
    for stale in (
        out,
        out.with_name("model.ckpt.safetensors"),
        out.with_suffix(".md"),
        out.with_name("model.train.jsonl"),
    ):
        if stale.exists():
            stale.unlink()
    tcfg = TrainConfig(
        task=cfg.task,
        data=cfg.data,
        out=out,
        steps=cfg.finetune_steps,
        genotype=g,
        val=cfg.val or cfg.data,
        batch=cfg.batch,
        patch=cfg.patch,
        gray=cfg.gray,
        precision=cfg.train_precision,
        lr=cfg.finetune_lr,
        device=cfg.train_device,
        checkpoint_every=cfg.finetune_steps,
        val_every=cfg.finetune_steps,
        seed=cfg.seed,
        threads=cfg.threads,
        command=cfg.command or "jsnet-edge search (fine-tune)",
    )
    return train(tcfg, progress=False).val_psnr, out


class _Measurer:
    """Whole networks measured on the target, each once (a genotype's latency is asked for
    again by the budget keeping and the Pareto plot)."""

    def __init__(self, cfg: SearchConfig) -> None:
        self.cfg = cfg
        self.cache: dict[str, float] = {}

    def __call__(self, g: Genotype) -> float:
        key = g.to_string()
        if key not in self.cache:
            c = self.cfg
            self.cache[key] = time_network(
                g,
                c.task,
                c.colors,
                c.input_size,
                c.backend,
                c.device,
                c.precision,
                c.timing,
                seed=c.seed,
                threads=c.runtime_threads,
            ).ms
        return self.cache[key]


def search(cfg: SearchConfig, log: Callable[[str], None] = lambda s: None) -> SearchResult:
    """Search one network per budget; write the run folder; see the module docstring."""
    cfg.check_paths()
    created = not cfg.out_dir.exists()
    try:
        return _search(cfg, log)
    except BaseException:
        if created:  # a failed or interrupted search leaves no run folder of its own behind
            shutil.rmtree(cfg.out_dir, ignore_errors=True)
        raise


def _search(cfg: SearchConfig, log: Callable[[str], None]) -> SearchResult:
    t_start, load_start = time.time(), os.getloadavg()
    with torch_threads(cfg.threads):
        cfg.out_dir.mkdir(parents=True, exist_ok=True)
        narrow = cfg.space.narrow_widths(task_scale(cfg.task), cfg.colors)
        if narrow:
            log(
                f"note: widths {', '.join(map(str, narrow))} carry fewer channels to the tail "
                f"than --unshuffle {cfg.space.unshuffle} packs into one position "
                f"({cfg.colors * cfg.space.unshuffle**2}): networks of those widths cannot "
                "restore full detail; use wider --widths or a smaller --unshuffle"
            )
        measure = _Measurer(cfg)
        smallest, smallest_ms = _refuse_impossible_budgets(cfg, measure, log)
        prof = _latency_table(cfg, log)
        expected = ExpectedLatency(prof.table, cfg.space).to(cfg.train_device)
        warm = _warm_up(cfg, expected, log)
        results = [
            _search_budget(cfg, budget, warm, expected, prof.table, measure, log)
            for budget in cfg.budgets_ms
        ]
        paper = _finetune_all(cfg, results, prof.table, measure, log)
    report = {
        "command": cfg.command,
        "config": cfg.to_json_dict(),
        "search_space": cfg.space.to_dict(),
        "target": prof.table.fingerprint,
        "latency_table": {
            "path": "latency_table.json",
            "cache": str(prof.path),
            "source": prof.source,
            "id": prof.table.id,
            "correction": prof.table.correction,
            "validation": prof.table.validation,
        },
        "smallest_network": {"genotype": smallest.to_string(), "measured_ms": smallest_ms},
        "loss": "L1 (0..255) + latency_weight * relu(E[latency] / (budget * (1 - margin)) - 1); "
        "bilevel, first-order DARTS",
        "results": [result_dict(r, cfg) for r in results],
        "paper": paper,
        "warmup_snapshots": warm.snapshots,
        "psnr_protocol": (
            f"PSNR on {Path(cfg.val or cfg.data).name}/ (trainer validation: centre "
            f"crops of 256 px, up to 8 photographs) after {cfg.finetune_steps} "
            f"training steps from scratch (batch {cfg.batch}, patch {cfg.patch})"
        ),
        "latency_protocol": (
            "one untiled backend call on a 1 x colors x H x W input; "
            "measured_ms of every result and of the paper's network comes "
            "from the same backend; run the Restorer with --tile >= the "
            "input's longer side to get it"
        ),
        "load_average": {"start": list(load_start), "end": list(os.getloadavg())},
        "wall_time_s": round(time.time() - t_start, 1),
    }
    out = cfg.out_dir
    genotype_path = write_genotype(out / "genotype.json", results[0], cfg, prof.table)
    plot = plot_pareto(results, paper, out / "pareto.png", cfg)
    report_path = write_json(out / "report.json", report, indent=1)
    return SearchResult(
        out, results, prof.table, report_path, plot, genotype_path, paper, smallest_ms
    )


def _refuse_impossible_budgets(
    cfg: SearchConfig, measure: _Measurer, log: Callable[[str], None]
) -> tuple[Genotype, float]:
    """1. Measure the smallest network of the space: a budget below it is refused before
    any long work."""
    smallest = cfg.space.smallest()
    smallest_ms = measure(smallest)
    log(f"smallest network {smallest.to_string()}: {smallest_ms:.2f} ms measured")
    if min(cfg.budgets_ms) < smallest_ms:
        w, h = cfg.input_size
        raise OptionError(
            f"a budget of {min(cfg.budgets_ms):g} ms is below the smallest network this search "
            f"can make: {smallest.to_string()} measured {smallest_ms:.2f} ms on "
            f"{cfg.backend}/{cfg.device}/{cfg.precision} at {w}x{h}; raise the budget to at "
            f"least {smallest_ms:.1f} ms, lower --input-size, or add narrower --widths"
        )
    return smallest, smallest_ms


def _latency_table(cfg: SearchConfig, log: Callable[[str], None]) -> ProfileResult:
    """2. The latency table of the target, with a correction fitted on whole networks."""
    pcfg = cfg.profile_config()
    prof = load_or_measure(pcfg, log)
    table = prof.table
    log(f"latency table {prof.path} ({prof.source}, {prof.measured_blocks} blocks timed)")
    if not table.correction.get("fitted") and cfg.validate >= 2:
        v = validate(table, cfg.space, cfg.validate, pcfg, log)
        prof.path = table.save(table.cache_path())
        log(
            f"correction fitted: measured = {v.a:.3f} x sum + {v.b:.3f} ms; MAPE "
            f"{v.mape_raw:.1f}% uncorrected, {v.mape_fit:.1f}% fitted"
            + (f", {v.mape_loo:.1f}% leave-one-out" if v.mape_loo is not None else "")
        )
    table.save(cfg.out_dir / "latency_table.json")
    return prof


@dataclass
class _WarmUp:
    """The supernet after the shared weights-only warm-up, and how to return to it."""

    net: SuperNet
    batches: _Batches
    optimizer: torch.optim.Optimizer
    snapshots: list[dict]
    state: tuple

    def restore(self) -> None:
        self.net.load_state_dict(self.state[0])
        self.optimizer.load_state_dict(self.state[1])
        self.batches.train.set_state(self.state[2])
        self.batches.val.set_state(self.state[3])


def _warm_up(cfg: SearchConfig, expected: ExpectedLatency, log: Callable[[str], None]) -> _WarmUp:
    """3. Network weights only, shared by every budget of a sweep."""
    torch.manual_seed(cfg.seed)
    batches = _Batches(cfg)
    amp = cfg.train_precision == "bf16"
    net = SuperNet(cfg.space, cfg.task, cfg.colors).to(cfg.train_device).train()
    w_opt = torch.optim.Adam(net.weights(), lr=cfg.lr)
    snaps = [_snapshot(net, 0, "warmup", expected, cfg.max_skip)]
    for step in range(1, cfg.warmup + 1):
        loss = _weight_step(net, w_opt, batches, amp)
        if step % cfg.snapshot_every == 0 or step == cfg.warmup:
            snaps.append(_snapshot(net, step, "warmup", expected, cfg.max_skip, train_loss=loss))
            log(f"warm-up {step}/{cfg.warmup}: L1 {loss:.3f}")
    state = (
        copy.deepcopy(net.state_dict()),
        copy.deepcopy(w_opt.state_dict()),
        batches.train.state(),
        batches.val.state(),
    )
    return _WarmUp(net, batches, w_opt, snaps, state)


def _search_budget(
    cfg: SearchConfig,
    budget: float,
    warm: _WarmUp,
    expected: ExpectedLatency,
    table: LatencyTable,
    measure: _Measurer,
    log: Callable[[str], None],
) -> BudgetResult:
    """4. One bilevel search from the shared warm-up, then the measured budget keeping."""
    warm.restore()
    net, batches, w_opt = warm.net, warm.batches, warm.optimizer
    amp = cfg.train_precision == "bf16"
    a_opt = torch.optim.Adam(
        net.alphas(), lr=cfg.arch_lr, betas=(0.5, 0.999), weight_decay=cfg.arch_weight_decay
    )
    target = budget * (1 - cfg.margin)
    snaps = []
    for step in range(cfg.warmup + 1, cfg.steps + 1):
        task_l, lat_l, e_ms = _arch_step(
            net, a_opt, batches, expected, target, cfg.latency_weight, amp
        )
        train_l = _weight_step(net, w_opt, batches, amp)
        if step % cfg.snapshot_every == 0 or step == cfg.steps:
            snaps.append(
                _snapshot(
                    net,
                    step,
                    "search",
                    expected,
                    cfg.max_skip,
                    val_loss=task_l,
                    latency_loss=lat_l,
                    train_loss=train_l,
                )
            )
            log(
                f"[{budget_label(budget)}] step {step}/{cfg.steps}: val L1 {task_l:.3f}, "
                f"E[latency] {e_ms:.2f} ms, derived {net.derive(cfg.max_skip).to_string()}"
            )
    weights = ArchWeights.of(net)

    def say(s: str) -> None:
        log(f"[{budget_label(budget)}] {s}")

    fit = fit_to_budget(net.derive(cfg.max_skip), weights, table, cfg.space, budget, measure, say)
    if cfg.grow and fit.genotype == fit.derived:
        fit = grow_within_budget(fit, weights, table, cfg.space, budget, cfg.margin, measure, say)
    return BudgetResult(budget, fit, snaps)


def _finetune_all(
    cfg: SearchConfig,
    results: list[BudgetResult],
    table: LatencyTable,
    measure: _Measurer,
    log: Callable[[str], None],
) -> dict | None:
    """5. A PSNR after a short fine-tune for each result, and for the paper's network."""
    for r in results:
        folder = cfg.out_dir / f"budget_{budget_label(r.budget_ms)}"
        folder.mkdir(exist_ok=True)
        log(f"fine-tuning {r.genotype.to_string()} for {cfg.finetune_steps} steps")
        r.psnr, r.model = _finetune(cfg, r.genotype, folder)
        write_genotype(folder / "genotype.json", r, cfg, table)
    if not cfg.paper:
        return None
    paper_ms = measure(PAPER)
    paper = {
        "genotype": PAPER.to_string(),
        "measured_ms": paper_ms,
        "predicted_ms": table.predict(PAPER) if cfg.space.contains(PAPER) else None,
    }
    folder = cfg.out_dir / "paper"
    folder.mkdir(exist_ok=True)
    log(f"paper's network: {paper_ms:.2f} ms measured; fine-tuning it as well")
    psnr, model = _finetune(cfg, PAPER, folder)
    paper.update(psnr=psnr, model=str(model.relative_to(cfg.out_dir)))
    return paper
