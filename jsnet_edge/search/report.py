"""What a search leaves behind: per-budget results, genotype.json files, report.json and
the Pareto plot of measured latency against PSNR."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jsnet_edge.models.genotype import Genotype
from jsnet_edge.outputs import atomic_output, write_json
from jsnet_edge.search.budget import Fit
from jsnet_edge.search.config import SearchConfig
from jsnet_edge.search.latency import LatencyTable


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


def result_dict(r: BudgetResult, cfg: SearchConfig) -> dict:
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
        "model": str(r.model.relative_to(cfg.out_dir)) if r.model else None,
        "snapshots": r.snapshots,
    }


def write_genotype(path: Path, r: BudgetResult, cfg: SearchConfig, table: LatencyTable) -> Path:
    """genotype.json: the genotype under "genotype" (what `jsnet-edge train --genotype` reads)
    and the facts about it beside."""
    return write_json(
        path,
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
    with atomic_output(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    return path
