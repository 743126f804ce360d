"""`profile(ProfileConfig(...))`: measure (or reuse) the latency table of a search space on
one device and backend, and optionally validate its predictions on whole random networks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jsnet_edge.errors import GenotypeError, OptionError
from jsnet_edge.models.genotype import Genotype
from jsnet_edge.outputs import check_output
from jsnet_edge.runtime.timing import TimingMethod
from jsnet_edge.search.latency import (
    LatencyTable,
    LatencyTableError,
    block_for,
    find_table,
    fit_correction,
    loo_mape,
    mape,
    space_keys,
)
from jsnet_edge.search.space import SearchSpace
from jsnet_edge.search.timing import check_target, fingerprint, time_block, time_network
from jsnet_edge.tasks import check_task


@dataclass(frozen=True)
class ProfileConfig:
    """Options of `profile`.

    Args:
        device, backend, precision: where the network will run.
        input_size: (W, H) of the network input (for SR: the low-resolution frame).
        task: decides the tail (upsampler or residual) and output size.
        space: the search space to cover (widths, max cells, nodes).
        out: also write the table here (it is always cached).
        table: read this table file instead of looking up the shipped tables and the cache.
        validate: measure this many random whole networks, fit the correction, report the
            prediction error.
        refresh: measure again even if a matching table exists.
        gray: 1-channel networks.
        timing: how each latency is measured.
        threads: threads of the runtime (onnxruntime intra-op, OpenVINO inference, torch);
            default: the runtime's own choice. Part of the fingerprint.
        seed: seeds the random validation networks.
        overwrite: replace an existing `out` file.
    """

    device: str = "cpu"
    backend: str = "onnxruntime"
    precision: str = "fp32"
    input_size: tuple[int, int] = (640, 360)
    task: str = "sr-x2"
    space: SearchSpace = field(default_factory=SearchSpace)
    out: Path | None = None
    table: Path | None = None
    validate: int = 0
    refresh: bool = False
    gray: bool = False
    timing: TimingMethod = field(default_factory=TimingMethod)
    threads: int | None = None
    seed: int = 0
    overwrite: bool = False

    def __post_init__(self) -> None:
        check_task(self.task)
        check_target(self.device, self.backend, self.precision)
        w, h = self.input_size
        u = self.space.unshuffle
        if min(w, h) < 16 * u:
            raise OptionError(
                f"--input-size must be at least {16 * u}x{16 * u} (the esab "
                f"attention needs it), got {w}x{h}"
            )
        if w % u or h % u:
            raise OptionError(
                f"--input-size must be a multiple of the unshuffle factor {u}, got {w}x{h}"
            )
        if self.threads is not None and self.threads < 1:
            raise OptionError(f"--runtime-threads must be >= 1, got {self.threads}")
        if self.validate < 0:
            raise OptionError(f"--validate must be >= 0, got {self.validate}")

    @property
    def colors(self) -> int:
        return 1 if self.gray else 3

    def fingerprint(self) -> dict:
        return fingerprint(
            self.device,
            self.backend,
            self.precision,
            self.input_size,
            self.task,
            self.colors,
            self.threads,
            self.space.unshuffle,
        )


@dataclass
class ProfileResult:
    table: LatencyTable
    path: Path
    source: str  # "shipped", "cache", "file", "measured", "extended"
    measured_blocks: int


def measure_entries(
    table: LatencyTable,
    keys: list[str],
    cfg: ProfileConfig,
    log: Callable[[str], None] = lambda s: None,
) -> int:
    """Time the blocks of `keys` that the table lacks; returns how many were timed."""
    fp = table.fingerprint
    w, h = table.input_size
    todo = table.missing(keys)
    if not todo:
        return 0
    if "call" in todo:
        todo.remove("call")
        todo.insert(0, "call")
    s = fp.get("unshuffle", 1)
    for i, key in enumerate(todo):
        module, channels = block_for(key, fp["task"], fp["colors"], s)
        if key == "call":
            shape = (1, channels, 1, 1)
        elif key.startswith("head:"):
            shape = (1, channels, h, w)
        else:  # the body runs at 1/s of the frame
            shape = (1, channels, h // s, w // s)
        t = time_block(
            module, shape, cfg.backend, cfg.device, cfg.precision, cfg.timing, cfg.threads
        )
        net = t.ms if key == "call" else max(0.0, t.ms - table.ms("call"))
        table.entries[key] = {
            "ms": round(net, 5),
            "median_ms": round(t.ms, 5),
            "mad_ms": round(t.mad_ms, 5),
            "kept": t.kept,
            "runs": t.runs,
        }
        if (i + 1) % 10 == 0 or i + 1 == len(todo):
            log(f"timed {i + 1}/{len(todo)} blocks")
    table.method = cfg.timing.describe()
    # New entries invalidate an old correction.
    table.correction = {"a": 1.0, "b": 0.0, "fitted": False}
    table.validation = None
    return len(todo)


def load_or_measure(
    cfg: ProfileConfig, log: Callable[[str], None] = lambda s: None
) -> ProfileResult:
    """The table for `cfg`, extended to cover `cfg.space`, saved to the cache (and `out`)."""
    fp = cfg.fingerprint()
    source = "measured"
    table = None
    path = None
    if cfg.table is not None:
        table, path, source = LatencyTable.load(cfg.table), Path(cfg.table), "file"
        if table.fingerprint != fp:
            diff = [k for k in fp if table.fingerprint.get(k) != fp[k]]
            raise LatencyTableError(
                f"latency table {cfg.table} was measured for another setting ("
                + ", ".join(
                    f"{k}: {table.fingerprint.get(k)!r} there, {fp[k]!r} here" for k in diff[:3]
                )
                + ")"
            )
    elif not cfg.refresh:
        found = find_table(fp)
        if found is not None:
            table, path = found
            source = (
                "shipped"
                if path.parent.resolve() == Path(__file__).with_name("tables").resolve()
                else "cache"
            )
    if table is None or cfg.refresh:
        table = LatencyTable(fingerprint=fp)
    n = measure_entries(table, space_keys(cfg.space), cfg, log)
    if n and source in ("shipped", "cache", "file"):
        source = "extended"
    if n or path is None:
        path = table.save(table.cache_path())
    if cfg.out is not None and Path(cfg.out).resolve() != path.resolve():
        table.save(Path(cfg.out))
    return ProfileResult(table, path, source, n)


@dataclass
class Validation:
    """Whole networks measured against the table's prediction.

    `mape_held_out` is the error of the correction the table had before these networks were
    measured, on the new ones only: the one number no fit has seen (None on a first run).
    """

    genotypes: list[str]
    raw_ms: list[float]
    measured_ms: list[float]
    a: float
    b: float
    mape_raw: float
    mape_fit: float
    mape_loo: float | None
    n_new: int
    mape_held_out: float | None = None

    def to_dict(self) -> dict:
        return {
            "n": len(self.genotypes),
            "genotypes": self.genotypes,
            "raw_ms": self.raw_ms,
            "measured_ms": self.measured_ms,
            "a": self.a,
            "b": self.b,
            "mape_uncorrected_percent": self.mape_raw,
            "mape_fitted_percent": self.mape_fit,
            "mape_leave_one_out_percent": self.mape_loo,
            "n_new": self.n_new,
            "mape_held_out_percent": self.mape_held_out,
            "note": "predicted = a * sum of blocks + b, fitted by least squares on relative "
            "error over all n networks (earlier validations of the same table are "
            "kept); leave-one-out MAPE predicts each network with a fit that did not "
            "see it; held-out MAPE is the previous correction on the n_new networks "
            "of the last run",
        }


def _earlier(table: LatencyTable) -> tuple[list[str], list[float], list[float]]:
    """The networks an earlier validation of this table measured, where the table still
    prices every block of them (whole-network timings stay true while entries are only
    added; `--refresh` starts a new table and drops them): genotypes, sums, measured."""
    v = table.validation or {}
    gens, raw, measured = [], [], []
    for g, m in zip(v.get("genotypes", []), v.get("measured_ms", []), strict=False):
        try:
            raw.append(table.raw(Genotype.from_string(g)))
        except (LatencyTableError, GenotypeError):
            continue
        gens.append(g)
        measured.append(float(m))
    return gens, raw, measured


def validate(
    table: LatencyTable,
    space: SearchSpace,
    n: int,
    cfg: ProfileConfig,
    log: Callable[[str], None] = lambda s: None,
) -> Validation:
    """Measure `n` new random whole networks of `space`, fit the table's correction to them
    and to those of earlier validations, and store it (with the errors) in the table.

    Every run adds evidence instead of replacing it, so a correction gets steadier each
    time a user validates again; the previous correction's error on the new networks is
    reported as a true held-out check."""
    if n < 2:
        raise OptionError(f"--validate needs at least 2 networks to fit a correction, got {n}")
    old_gens, old_raw, old_measured = _earlier(table)
    previous = (
        (float(table.correction["a"]), float(table.correction["b"]))
        if table.correction.get("fitted") and old_gens
        else None
    )
    rng = np.random.default_rng(cfg.seed)
    gens: list[Genotype] = []
    seen = set(old_gens)
    for _ in range(100 * n):  # draw past networks measured before (same seed, same draws)
        if len(gens) == n:
            break
        g = space.random_genotype(rng)
        if g.to_string() not in seen:
            seen.add(g.to_string())
            gens.append(g)
    raw, measured = [], []
    for i, g in enumerate(gens):
        raw.append(table.raw(g))
        measured.append(
            time_network(
                g,
                table.fingerprint["task"],
                table.fingerprint["colors"],
                table.input_size,
                cfg.backend,
                cfg.device,
                cfg.precision,
                cfg.timing,
                threads=cfg.threads,
            ).ms
        )
        log(
            f"validation {i + 1}/{len(gens)}: {g.to_string()}: sum {raw[-1]:.2f} ms, "
            f"measured {measured[-1]:.2f} ms"
        )
    held_out = None
    if previous is not None:
        held_out = mape([previous[0] * r + previous[1] for r in raw], measured)
        log(
            f"the previous correction predicts these {len(gens)} new networks with "
            f"{held_out:.1f}% error; refitting on them and the {len(old_gens)} measured before"
        )
    all_gens = old_gens + [g.to_string() for g in gens]
    all_raw = old_raw + raw
    all_measured = old_measured + measured
    a, b = fit_correction(all_raw, all_measured)
    v = Validation(
        all_gens,
        all_raw,
        all_measured,
        a,
        b,
        mape(all_raw, all_measured),
        mape([a * r + b for r in all_raw], all_measured),
        loo_mape(all_raw, all_measured),
        n_new=len(gens),
        mape_held_out=held_out,
    )
    table.correction = {"a": a, "b": b, "fitted": True}
    table.validation = v.to_dict()
    return v


def profile(
    cfg: ProfileConfig, log: Callable[[str], None] = lambda s: None
) -> tuple[ProfileResult, Validation | None]:
    """Get the table (measuring what is missing); with `cfg.validate`, fit and save it."""
    if cfg.out is not None:
        check_output(cfg.out, overwrite=cfg.overwrite, what="table file")
    result = load_or_measure(cfg, log)
    v = None
    if cfg.validate:
        v = validate(result.table, cfg.space, cfg.validate, cfg, log)
        result.path = result.table.save(result.table.cache_path())
        if cfg.out is not None and Path(cfg.out).resolve() != result.path.resolve():
            result.table.save(Path(cfg.out))
    return result, v
