"""Keeping the budget a promise: after the search, the derived network is measured, and
while it is over budget the choice that saves most latency per unit of architecture weight
given up is given up (`fit_to_budget`); a budget left unused is spent on size
(`grow_within_budget`). Every decision rests on a measurement, not on the table alone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from jsnet_edge.errors import OptionError
from jsnet_edge.models.genotype import Genotype
from jsnet_edge.search.latency import LatencyTable, att_key, op_key
from jsnet_edge.search.space import ATT_CHOICES, ATT_NAMES, OP_CHOICES, OP_NAMES, SearchSpace
from jsnet_edge.search.supernet import SuperNet


@dataclass
class ArchWeights:
    """The architecture weights derivation reads, as arrays: op (edges x 7, times the
    edge's normalised beta), att (edges x 9), depth, width, csfm (the space's fusion
    choices, `SearchSpace.csfm`)."""

    op: np.ndarray
    att: np.ndarray
    depth: np.ndarray
    width: np.ndarray
    csfm: np.ndarray

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
                p["csfm"].numpy(),
            )

    @classmethod
    def uniform(cls, space: SearchSpace) -> ArchWeights:
        e = space.edges
        return cls(
            np.full((e, len(OP_NAMES)), 1 / len(OP_NAMES)),
            np.full((e, len(ATT_NAMES)), 1 / len(ATT_NAMES)),
            np.full(space.max_cells, 1 / space.max_cells),
            np.full(len(space.widths), 1 / len(space.widths)),
            np.full(len(space.csfm), 1 / len(space.csfm)),
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
    than the current one (skip_connect at the end); one cell fewer; the next narrower width;
    the plain fusion in place of the CSFM where the space offers both."""
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
    if g.csfm and False in space.csfm:
        ng = replace(g, csfm=False)
        out.append(
            GiveUp(
                "fusion CSFM -> plain",
                ng,
                base - table.predict(ng),
                float(w.csfm[space.csfm.index(True)] - w.csfm[space.csfm.index(False)]),
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
