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
import json
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from jsnet_edge.errors import OptionError
from jsnet_edge.models.genotype import PAPER, Genotype
from jsnet_edge.search.latency import (
    ExpectedLatency,
    LatencyTable,
    att_key,
    op_key,
)
from jsnet_edge.search.profile import ProfileConfig, load_or_measure, validate
from jsnet_edge.search.space import ATT_CHOICES, ATT_NAMES, OP_CHOICES, OP_NAMES, SearchSpace
from jsnet_edge.search.supernet import SuperNet
from jsnet_edge.search.timing import TimingMethod, check_target, time_network
from jsnet_edge.tasks import check_task, task_scale

_BUDGET = re.compile(r"^\s*([+-]?[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(ms|s)?\s*$", re.IGNORECASE)


def parse_budget(text: str | float) -> float:
    """A latency budget in milliseconds from '10ms', '0.5s' or '20' (milliseconds)."""
    if isinstance(text, (int, float)):
        value, unit = float(text), "ms"
    else:
        m = _BUDGET.match(str(text))
        if m is None:
            raise OptionError(
                f"cannot read the latency budget {text!r}; write it like 10ms, "
                "0.5s or 20 (milliseconds)"
            )
        value, unit = float(m.group(1)), (m.group(2) or "ms").lower()
    ms = value * (1000.0 if unit == "s" else 1.0)
    if not math.isfinite(ms) or ms <= 0:
        raise OptionError(f"a latency budget must be a positive time, got {text!r}")
    return ms


def parse_budgets(text: str) -> tuple[float, ...]:
    """'5ms,10ms,20ms' -> (5.0, 10.0, 20.0)."""
    parts = [p for p in str(text).split(",") if p.strip()]
    if not parts:
        raise OptionError("--budgets needs at least one budget, e.g. 5ms,10ms,20ms")
    return tuple(parse_budget(p) for p in parts)


def budget_label(ms: float) -> str:
    return f"{ms:g}ms"


@dataclass
class SearchConfig:
    """Options of `search`.

    Args:
        task: sr-x2, sr-x3, sr-x4, denoise or jpeg.
        data: folder of training photographs.
        out: run folder (genotype.json, report.json, latency_table.json, pareto.png).
        budgets: latency budgets in ms; the first is the run's main result (genotype.json),
            the others make a sweep (one search per budget after a shared warm-up).
        device, backend, precision, input_size: the deployment target; input_size is the
            network input (W, H) (for SR, the low-resolution frame).
        val: folder of validation photographs for the architecture steps and the PSNR;
            default: `data` with another seed.
        steps: supernet steps per budget, warm-up included.
        warmup_steps: weights-only steps before the architecture steps (default steps // 4).
        finetune_steps: training steps of each derived network for its PSNR (>= 1).
        widths, max_cells, nodes, partial, unshuffle: the search space (see `SearchSpace`).
        batch, patch: patches per step and target patch side.
        lr: Adam learning rate of the network weights.
        arch_lr, arch_weight_decay: Adam of the architecture weights.
        latency_weight: lambda of the latency term, in units of the L1 loss (grey levels on
            the 0..255 scale): 20 makes 10% over budget weigh as much as 2 grey levels of
            mean absolute error, far more than architectures differ by, so the term acts as
            a soft barrier; within the budget it is zero.
        margin: the latency term aims at budget * (1 - margin), leaving room for the
            prediction error before the measured check.
        max_skip: operation edges (per cell) the derivation may leave as skip_connect
            (see `SuperNet.derive`); None: no limit.
        grow: when the derived network is within budget, spend what is left on one more
            cell or the next width while the measurement fits (see `grow_within_budget`).
        validate: random whole networks measured to fit the table's correction when it has
            none yet (0 skips the fit).
        snapshot_every: record the architecture weights every this many steps.
        table: use this latency table file (must match the target).
        paper: also measure and fine-tune the paper's network for comparison.
        threads: torch threads for training.
        runtime_threads: threads of the target runtime when measuring (part of the table's
            fingerprint); default: the runtime's own choice.
        train_precision: fp32 or bf16 (autocast) for the supernet and the fine-tunes.
        train_device: where the supernet and the fine-tunes train (cpu or cuda); the
            latencies are always measured on `device`.
        timing: how latencies are measured.
        overwrite: replace the results of an earlier run in `out`.
    """

    task: str
    data: Path
    out: Path
    budgets: tuple[float, ...]
    device: str = "cpu"
    backend: str = "onnxruntime"
    precision: str = "fp32"
    input_size: tuple[int, int] = (640, 360)
    val: Path | None = None
    steps: int = 400
    warmup_steps: int | None = None
    finetune_steps: int = 200
    widths: tuple[int, ...] = (8, 12, 16, 24)
    max_cells: int = 5
    nodes: int = 3
    partial: int = 4
    unshuffle: int = 1
    batch: int = 8
    patch: int = 64
    lr: float = 1e-3
    arch_lr: float = 3e-3
    arch_weight_decay: float = 1e-3
    latency_weight: float = 20.0
    margin: float = 0.05
    max_skip: int | None = 1
    grow: bool = True
    validate: int = 6
    snapshot_every: int = 10
    table: Path | None = None
    paper: bool = True
    gray: bool = False
    seed: int = 0
    threads: int | None = None
    runtime_threads: int | None = None
    train_precision: str = "fp32"
    train_device: str = "cpu"
    finetune_lr: float = 5e-4
    timing: TimingMethod = field(default_factory=TimingMethod)
    overwrite: bool = False
    command: str = ""

    def __post_init__(self) -> None:
        check_task(self.task)
        check_target(self.device, self.backend, self.precision)
        self.data, self.out = Path(self.data), Path(self.out)
        self.val = Path(self.val) if self.val is not None else None
        self.table = Path(self.table) if self.table is not None else None
        if not self.budgets:
            raise OptionError("give at least one latency budget")
        self.budgets = tuple(parse_budget(b) for b in self.budgets)
        if len(set(self.budgets)) != len(self.budgets):
            raise OptionError("the budgets of a sweep must differ")
        if not self.data.is_dir():
            raise OptionError(f"training data folder {self.data} does not exist")
        if self.val is not None and not self.val.is_dir():
            raise OptionError(f"validation folder {self.val} does not exist")
        if self.steps < 1:
            raise OptionError(f"--steps must be at least 1, got {self.steps}")
        if self.warmup_steps is None:
            self.warmup_steps = self.steps // 4
        if not 0 <= self.warmup_steps < self.steps:
            raise OptionError(f"--warmup-steps must be in [0, steps), got {self.warmup_steps}")
        if self.finetune_steps < 1:
            raise OptionError(
                "--finetune-steps must be at least 1 (the PSNR of each result comes from it)"
            )
        if self.batch < 1:
            raise OptionError(f"--batch must be at least 1, got {self.batch}")
        scale = task_scale(self.task)
        m = scale * self.unshuffle
        if self.patch % m or self.patch // m < 16:
            raise OptionError(
                f"--patch must be a multiple of {m} with at least 16 pixels in "
                f"the network's body (the esab attention needs them), got "
                f"{self.patch}"
            )
        w, h = self.input_size
        if min(w, h) < 16:
            raise OptionError(f"--input-size must be at least 16x16, got {w}x{h}")
        if self.latency_weight < 0 or not 0 <= self.margin < 1:
            raise OptionError("--latency-weight must be >= 0 and --margin in [0, 1)")
        if self.validate == 1 or self.validate < 0:
            raise OptionError("--validate must be 0 or at least 2 networks")
        if self.snapshot_every < 1:
            raise OptionError("--snapshot-every must be at least 1")
        from jsnet_edge.deploy.torch_backend import check_torch_device

        check_torch_device(self.train_device)
        if self.train_precision not in ("fp32", "bf16"):
            raise OptionError(
                f"training precision must be fp32 or bf16, not {self.train_precision}"
            )
        _ = self.space  # validates the sizes
        if self.runtime_threads is not None and self.runtime_threads < 1:
            raise OptionError(f"--runtime-threads must be >= 1, got {self.runtime_threads}")
        if (self.out / "report.json").exists() and not self.overwrite:
            raise OptionError(
                f"{self.out} holds an earlier search (report.json); choose "
                "another --out or pass --overwrite"
            )

    @property
    def space(self) -> SearchSpace:
        return SearchSpace(
            tuple(self.widths), self.max_cells, self.nodes, self.partial, self.unshuffle
        )

    @property
    def colors(self) -> int:
        return 1 if self.gray else 3

    def profile_config(self) -> ProfileConfig:
        return ProfileConfig(
            device=self.device,
            backend=self.backend,
            precision=self.precision,
            input_size=self.input_size,
            task=self.task,
            space=self.space,
            table=self.table,
            gray=self.gray,
            timing=self.timing,
            threads=self.runtime_threads,
            seed=self.seed,
        )

    def to_json_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "timing"}
        for k in ("data", "out", "val", "table"):
            d[k] = str(d[k]) if d[k] is not None else None
        d["budgets"] = list(self.budgets)
        d["widths"] = list(self.widths)
        d["input_size"] = list(self.input_size)
        d["timing"] = self.timing.describe()
        return d


# --- keeping the promise: give up what costs most per unit of architecture weight ---------


@dataclass
class ArchWeights:
    """The architecture weights derivation reads, as arrays: op (edges x 7, times the
    edge's normalised beta), att (edges x 9), depth, width."""

    op: np.ndarray
    att: np.ndarray
    depth: np.ndarray
    width: np.ndarray

    @classmethod
    def of(cls, net: SuperNet) -> ArchWeights:
        with torch.no_grad():
            p = net.probabilities()
            p = {k: v.cpu() for k, v in p.items()}
            return cls(
                (p["op"] * p["edge"][:, None]).numpy(),
                p["att"].numpy(),
                p["depth"].numpy(),
                p["width"].numpy(),
            )

    @classmethod
    def uniform(cls, space: SearchSpace) -> ArchWeights:
        e = space.edges
        return cls(
            np.full((e, len(OP_NAMES)), 1 / len(OP_NAMES)),
            np.full((e, len(ATT_NAMES)), 1 / len(ATT_NAMES)),
            np.full(space.max_cells, 1 / space.max_cells),
            np.full(len(space.widths), 1 / len(space.widths)),
        )


@dataclass
class GiveUp:
    action: str
    genotype: Genotype
    saved_ms: float
    weight_lost: float

    def score(self, eps: float = 1e-3) -> float:
        return self.saved_ms / (max(self.weight_lost, 0.0) + eps)


def _block_ms(table: LatencyTable, kind: str, name: str, width: int) -> float:
    if name == "skip_connect":
        return 0.0
    return table.ms(op_key(name, width) if kind == "op" else att_key(name, width))


def give_ups(g: Genotype, w: ArchWeights, table: LatencyTable, space: SearchSpace) -> list[GiveUp]:
    """Every single step down from `g`: on one edge, the strongest candidate that is cheaper
    than the current one (skip_connect at the end); one cell fewer; the next narrower width."""
    base = table.predict(g)
    out: list[GiveUp] = []
    for kind, names, choices, weights, field_name in (
        ("op", OP_NAMES, OP_CHOICES, w.op, "ops"),
        ("att", ATT_NAMES, ATT_CHOICES, w.att, "attentions"),
    ):
        current = getattr(g, field_name)
        for e, cur in enumerate(current):
            cost = _block_ms(table, kind, cur, g.width)
            cheaper = [n for n in choices if _block_ms(table, kind, n, g.width) < cost]
            if not cheaper:
                continue
            new = max(cheaper, key=lambda n: weights[e, names.index(n)])
            ng = replace(g, **{field_name: current[:e] + (new,) + current[e + 1 :]})
            out.append(
                GiveUp(
                    f"{kind} edge {e}: {cur} -> {new}",
                    ng,
                    base - table.predict(ng),
                    float(weights[e, names.index(cur)] - weights[e, names.index(new)]),
                )
            )
    if g.cells > 1:
        ng = replace(g, cells=g.cells - 1)
        out.append(
            GiveUp(
                f"cells {g.cells} -> {g.cells - 1}",
                ng,
                base - table.predict(ng),
                float(w.depth[g.cells - 1] - w.depth[g.cells - 2]),
            )
        )
    i = space.widths.index(g.width)
    if i > 0:
        ng = replace(g, width=space.widths[i - 1])
        out.append(
            GiveUp(
                f"width {g.width} -> {space.widths[i - 1]}",
                ng,
                base - table.predict(ng),
                float(w.width[i] - w.width[i - 1]),
            )
        )
    return [c for c in out if c.saved_ms > 0]


@dataclass
class Fit:
    derived: Genotype
    genotype: Genotype
    predicted_ms: float
    measured_ms: float
    history: list[dict]


def give_up_path(
    g: Genotype, w: ArchWeights, table: LatencyTable, space: SearchSpace
) -> list[tuple[Genotype, GiveUp | None]]:
    """The greedy path from `g` down to the smallest network: at each step the give-up with
    the best score (latency saved per unit of architecture weight lost, from the table)."""
    path: list[tuple[Genotype, GiveUp | None]] = [(g, None)]
    while True:
        options = give_ups(g, w, table, space)
        if not options:
            return path
        best = max(options, key=GiveUp.score)
        g = best.genotype
        path.append((g, best))


def fit_to_budget(
    g: Genotype,
    w: ArchWeights,
    table: LatencyTable,
    space: SearchSpace,
    budget_ms: float,
    measure: Callable[[Genotype], float],
    log: Callable[[str], None] = lambda s: None,
) -> Fit:
    """The first network on the give-up path from `g` that MEASURES within budget.

    `g` is measured; if it is over budget, the next network measured is the first on the
    path whose table prediction, scaled by how far the last measurement was from its own
    prediction, fits; that repeats until one fits, and a bisection between the last network
    over budget and the first within it (a few more measurements) then keeps as much of the
    searched network as the budget allows. Raises if even the end of the path is over.
    """
    path = give_up_path(g, w, table, space)
    predicted = [table.predict(p) for p, _ in path]
    history: list[dict] = []
    for i, (p, step) in enumerate(path):
        entry = {"genotype": p.to_string(), "predicted_ms": predicted[i]}
        if step is not None:
            entry.update(action=step.action, saved_ms=step.saved_ms, weight_lost=step.weight_lost)
        else:
            entry["action"] = "derived"
        history.append(entry)
    measured: dict[int, float] = {}

    def fits(i: int) -> bool:
        if i not in measured:
            measured[i] = measure(path[i][0])
            history[i]["measured_ms"] = measured[i]
            log(
                f"{'derived' if i == 0 else f'give-up step {i}:'} {path[i][0].to_string()}: "
                f"predicted {predicted[i]:.2f} ms, measured {measured[i]:.2f} ms, budget "
                f"{budget_ms:g} ms"
            )
        return measured[i] <= budget_ms

    over, within = 0, None
    if fits(0):
        within = 0
    while within is None:
        if over == len(path) - 1:
            raise OptionError(
                f"cannot fit the budget of {budget_ms:g} ms: the smallest network of the space "
                f"({path[over][0].to_string()}) measured {measured[over]:.2f} ms here (timings "
                "vary with the machine's load; raise the budget or lower --input-size)"
            )
        ratio = measured[over] / max(predicted[over], 1e-9)
        nxt = next(
            (i for i in range(over + 1, len(path)) if predicted[i] * ratio <= budget_ms),
            len(path) - 1,
        )
        if fits(nxt):
            within = nxt
        else:
            over = nxt
    while within - over > 1:
        mid = (over + within) // 2
        if fits(mid):
            within = mid
        else:
            over = mid
    return Fit(
        g,
        path[within][0],
        predicted[within],
        measured[within],
        history[: max(within, max(measured)) + 1],
    )


def grow_within_budget(
    fit: Fit,
    w: ArchWeights,
    table: LatencyTable,
    space: SearchSpace,
    budget_ms: float,
    margin: float,
    measure: Callable[[Genotype], float],
    log: Callable[[str], None] = lambda s: None,
) -> Fit:
    """Spend a budget the derived network leaves unused on size: one more cell or the next
    width (the likelier under the architecture weights first) while the prediction, scaled
    by the last measurement's ratio, stays within budget * (1 - margin) and the measurement
    within budget. A step that measures over budget is dropped and the other one is tried:
    the table can misjudge one size direction (at 640x360 on our CPU it predicted the next
    width at 12 ms, which measured 19 ms) while the other still fits.

    Why: the edge choices are what the supernet ranks well; its size preference is the
    least trustworthy part of a short weight-sharing search (small sub-networks train
    faster early on), while at a fixed edge choice a deeper or wider network is the better
    one. Only sizes grow; edge choices stay the searched ones.
    """
    g, measured = fit.genotype, fit.measured_ms
    predicted = table.predict(g)
    history = list(fit.history)
    rejected: set[Genotype] = set()
    while True:
        ratio = measured / max(predicted, 1e-9)
        options = []
        if g.cells < space.max_cells:
            options.append(
                (
                    f"grow: cells {g.cells} -> {g.cells + 1}",
                    replace(g, cells=g.cells + 1),
                    float(w.depth[g.cells]),
                )
            )
        i = space.widths.index(g.width)
        if i + 1 < len(space.widths):
            options.append(
                (
                    f"grow: width {g.width} -> {space.widths[i + 1]}",
                    replace(g, width=space.widths[i + 1]),
                    float(w.width[i + 1]),
                )
            )
        options = [
            o
            for o in options
            if o[1] not in rejected and table.predict(o[1]) * ratio <= budget_ms * (1 - margin)
        ]
        if not options:
            break
        action, ng, weight = max(options, key=lambda o: o[2])
        m = measure(ng)
        history.append(
            {
                "action": action,
                "genotype": ng.to_string(),
                "predicted_ms": table.predict(ng),
                "measured_ms": m,
                "architecture_weight": weight,
                "accepted": m <= budget_ms,
            }
        )
        log(
            f"{action}: {ng.to_string()}: predicted {table.predict(ng):.2f} ms, measured "
            f"{m:.2f} ms, budget {budget_ms:g} ms"
        )
        if m > budget_ms:
            rejected.add(ng)
            continue
        g, measured, predicted = ng, m, table.predict(ng)
    return Fit(fit.derived, g, predicted, measured, history)


# --- the bilevel search -------------------------------------------------------------------


def latency_penalty(expected_ms: torch.Tensor, target_ms: float, weight: float) -> torch.Tensor:
    """lambda * relu(E[LAT] / target - 1) (see the module docstring for why this form)."""
    return weight * torch.relu(expected_ms / target_ms - 1.0)


@dataclass
class BudgetResult:
    budget_ms: float
    fit: Fit
    snapshots: list[dict]
    psnr: float | None = None
    model: Path | None = None

    @property
    def genotype(self) -> Genotype:
        return self.fit.genotype


@dataclass
class SearchResult:
    out: Path
    results: list[BudgetResult]
    table: LatencyTable
    report: Path
    plot: Path
    genotype_path: Path
    paper: dict | None
    smallest_ms: float


def _l1(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (pred.float() - y).abs().mean()


class _Batches:
    """Training and validation patches (two folders, or one folder with two seeds)."""

    def __init__(self, cfg: SearchConfig) -> None:
        from jsnet_edge.train.data import DegradationSpec, PatchSampler

        spec = DegradationSpec(cfg.task)
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
    lat = expected(net.alpha_op, net.alpha_att, net.alpha_depth, net.alpha_width)
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
        e = float(expected(net.alpha_op, net.alpha_att, net.alpha_depth, net.alpha_width))
    return {
        "step": step,
        "phase": phase,
        "expected_ms": round(e, 4),
        "derived": net.derive(max_skip).to_string(),
        **extra,
        "weights": net.snapshot(),
    }


def _finetune(cfg: SearchConfig, g: Genotype, folder: Path) -> tuple[float | None, Path]:
    from jsnet_edge.train.trainer import TrainConfig, train

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


def search(cfg: SearchConfig, log: Callable[[str], None] = lambda s: None) -> SearchResult:
    """Search one network per budget; write the run folder; see the module docstring."""
    t_start = time.time()
    load_start = os.getloadavg()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    space = cfg.space
    cfg.out.mkdir(parents=True, exist_ok=True)
    measured_cache: dict[str, float] = {}

    def measure(g: Genotype) -> float:
        key = g.to_string()
        if key not in measured_cache:
            measured_cache[key] = time_network(
                g,
                cfg.task,
                cfg.colors,
                cfg.input_size,
                cfg.backend,
                cfg.device,
                cfg.precision,
                cfg.timing,
                seed=cfg.seed,
                threads=cfg.runtime_threads,
            ).ms
        return measured_cache[key]

    # 1. Refuse budgets no network of the space can meet, before any long work.
    smallest = space.smallest()
    smallest_ms = measure(smallest)
    log(f"smallest network {smallest.to_string()}: {smallest_ms:.2f} ms measured")
    if min(cfg.budgets) < smallest_ms:
        w, h = cfg.input_size
        raise OptionError(
            f"a budget of {min(cfg.budgets):g} ms is below the smallest network this search "
            f"can make: {smallest.to_string()} measured {smallest_ms:.2f} ms on "
            f"{cfg.backend}/{cfg.device}/{cfg.precision} at {w}x{h}; raise the budget to at "
            f"least {smallest_ms:.1f} ms, lower --input-size, or add narrower --widths"
        )

    # 2. The latency table, with a fitted correction.
    pcfg = cfg.profile_config()
    prof = load_or_measure(pcfg, log)
    table = prof.table
    log(f"latency table {prof.path} ({prof.source}, {prof.measured_blocks} blocks timed)")
    if not table.correction.get("fitted") and cfg.validate >= 2:
        v = validate(table, space, cfg.validate, pcfg, log)
        prof.path = table.save(table.cache_path())
        log(
            f"correction fitted: measured = {v.a:.3f} x sum + {v.b:.3f} ms; MAPE "
            f"{v.mape_raw:.1f}% uncorrected, {v.mape_fit:.1f}% fitted"
            + (f", {v.mape_loo:.1f}% leave-one-out" if v.mape_loo is not None else "")
        )
    table_path = table.save(cfg.out / "latency_table.json")
    expected = ExpectedLatency(table, space).to(cfg.train_device)

    # 3. Shared warm-up: network weights only.
    torch.manual_seed(cfg.seed)
    batches = _Batches(cfg)
    amp = cfg.train_precision == "bf16"
    net = SuperNet(space, cfg.task, cfg.colors).to(cfg.train_device).train()
    w_opt = torch.optim.Adam(net.weights(), lr=cfg.lr)
    warm_snaps = [_snapshot(net, 0, "warmup", expected, cfg.max_skip)]
    for step in range(1, cfg.warmup_steps + 1):
        loss = _weight_step(net, w_opt, batches, amp)
        if step % cfg.snapshot_every == 0 or step == cfg.warmup_steps:
            warm_snaps.append(
                _snapshot(net, step, "warmup", expected, cfg.max_skip, train_loss=loss)
            )
            log(f"warm-up {step}/{cfg.warmup_steps}: L1 {loss:.3f}")
    warm_state = (
        copy.deepcopy(net.state_dict()),
        copy.deepcopy(w_opt.state_dict()),
        batches.train.state(),
        batches.val.state(),
    )

    # 4. One architecture search per budget, each from the shared warm-up.
    results: list[BudgetResult] = []
    for budget in cfg.budgets:
        net.load_state_dict(warm_state[0])
        w_opt.load_state_dict(warm_state[1])
        batches.train.set_state(warm_state[2])
        batches.val.set_state(warm_state[3])
        a_opt = torch.optim.Adam(
            net.alphas(), lr=cfg.arch_lr, betas=(0.5, 0.999), weight_decay=cfg.arch_weight_decay
        )
        target = budget * (1 - cfg.margin)
        snaps = []
        for step in range(cfg.warmup_steps + 1, cfg.steps + 1):
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

        def say(s: str, b: float = budget) -> None:
            log(f"[{budget_label(b)}] {s}")

        fit = fit_to_budget(net.derive(cfg.max_skip), weights, table, space, budget, measure, say)
        if cfg.grow and fit.genotype == fit.derived:
            fit = grow_within_budget(fit, weights, table, space, budget, cfg.margin, measure, say)
        results.append(BudgetResult(budget, fit, snaps))

    # 5. PSNR after a short fine-tune, for the searched networks and the paper's.
    for r in results:
        folder = cfg.out / f"budget_{budget_label(r.budget_ms)}"
        folder.mkdir(exist_ok=True)
        log(f"fine-tuning {r.genotype.to_string()} for {cfg.finetune_steps} steps")
        r.psnr, r.model = _finetune(cfg, r.genotype, folder)
        _write_genotype(folder / "genotype.json", r, cfg, table)
    paper = None
    if cfg.paper:
        paper_ms = measure(PAPER)
        paper = {
            "genotype": PAPER.to_string(),
            "measured_ms": paper_ms,
            "predicted_ms": table.predict(PAPER) if space.contains(PAPER) else None,
        }
        folder = cfg.out / "paper"
        folder.mkdir(exist_ok=True)
        log(f"paper's network: {paper_ms:.2f} ms measured; fine-tuning it as well")
        psnr, model = _finetune(cfg, PAPER, folder)
        paper.update(psnr=psnr, model=str(model.relative_to(cfg.out)))

    # 6. Outputs.
    genotype_path = _write_genotype(cfg.out / "genotype.json", results[0], cfg, table)
    plot = plot_pareto(results, paper, cfg.out / "pareto.png", cfg)
    report = {
        "command": cfg.command,
        "config": cfg.to_json_dict(),
        "search_space": space.to_dict(),
        "target": table.fingerprint,
        "latency_table": {
            "path": table_path.name,
            "cache": str(prof.path),
            "source": prof.source,
            "id": table.id,
            "correction": table.correction,
            "validation": table.validation,
        },
        "smallest_network": {"genotype": smallest.to_string(), "measured_ms": smallest_ms},
        "loss": "L1 (0..255) + latency_weight * relu(E[latency] / (budget * (1 - margin)) - 1); "
        "bilevel, first-order DARTS",
        "results": [_result_dict(r, cfg) for r in results],
        "paper": paper,
        "warmup_snapshots": warm_snaps,
        "psnr_protocol": (
            f"PSNR on {(cfg.val or cfg.data).name}/ (trainer validation: centre "
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
    report_path = cfg.out / "report.json"
    report_path.write_text(json.dumps(report, indent=1))
    return SearchResult(
        cfg.out, results, table, report_path, plot, genotype_path, paper, smallest_ms
    )


def _result_dict(r: BudgetResult, cfg: SearchConfig) -> dict:
    return {
        "budget_ms": r.budget_ms,
        "genotype": r.genotype.to_dict(),
        "genotype_string": r.genotype.to_string(),
        "derived": r.fit.derived.to_string(),
        "predicted_ms": r.fit.predicted_ms,
        "measured_ms": r.fit.measured_ms,
        "within_budget": r.fit.measured_ms <= r.budget_ms,
        "fit_history": r.fit.history,
        "psnr": r.psnr,
        "model": str(r.model.relative_to(cfg.out)) if r.model else None,
        "snapshots": r.snapshots,
    }


def _write_genotype(path: Path, r: BudgetResult, cfg: SearchConfig, table: LatencyTable) -> Path:
    """genotype.json: the genotype under "genotype" (what `jsnet-edge train --genotype` reads)
    and the facts about it beside."""
    path.write_text(
        json.dumps(
            {
                "genotype": r.genotype.to_dict(),
                "string": r.genotype.to_string(),
                "task": cfg.task,
                "budget_ms": r.budget_ms,
                "predicted_ms": r.fit.predicted_ms,
                "measured_ms": r.fit.measured_ms,
                "psnr": r.psnr,
                "target": {
                    k: table.fingerprint[k]
                    for k in ("device", "backend", "backend_version", "precision", "input_size")
                },
            },
            indent=1,
        )
    )
    return path


def plot_pareto(
    results: list[BudgetResult], paper: dict | None, path: Path, cfg: SearchConfig
) -> Path:
    """Measured latency vs PSNR of the searched networks (and the paper's), as a PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    rows = sorted(results, key=lambda r: r.fit.measured_ms)
    xs = [r.fit.measured_ms for r in rows]
    ys = [r.psnr if r.psnr is not None else float("nan") for r in rows]
    ax.plot(xs, ys, "o-", color="tab:blue", label="searched (measured)")
    labels: dict[tuple[float, float], list[str]] = {}
    for r, x, y in zip(rows, xs, ys, strict=True):
        labels.setdefault((x, y), [r.genotype.to_string().split(":")[0]]).append(f"{r.budget_ms:g}")
        ax.axvline(r.budget_ms, color="tab:blue", alpha=0.25, linestyle=":")
    for (x, y), (name, *budgets) in labels.items():  # one label per distinct network
        ax.annotate(
            f"{name} (budget {', '.join(budgets)} ms)",
            (x, y),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=7,
        )
    if paper is not None and paper.get("psnr") is not None:
        ax.scatter(
            [paper["measured_ms"]],
            [paper["psnr"]],
            marker="*",
            s=180,
            color="tab:red",
            zorder=3,
            label="paper's JSNet (same backend)",
        )
    xs_all = xs + [r.budget_ms for r in rows] + ([paper["measured_ms"]] if paper else [])
    if max(xs_all) / max(min(xs_all), 1e-9) > 20:
        ax.set_xscale("log")
    w, h = cfg.input_size
    ax.set_xlabel(
        f"measured latency (ms), {cfg.backend} {cfg.precision} on {cfg.device}, {w}x{h} input"
    )
    ax.set_ylabel(f"PSNR (dB) after {cfg.finetune_steps} steps")
    ax.set_title(f"JSNet search, {cfg.task}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)
    return path
