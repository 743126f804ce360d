"""How a latency is measured, once for the whole package: warm up, repeat, reject outliers
beyond a few scaled MADs of the median, take the median. The search's block and network
timings, `backend="auto"`'s choice and the benchmarks all use `time_call`, so their
numbers are taken the same way."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from jsnet_edge.errors import OptionError


@dataclass(frozen=True)
class TimingMethod:
    """How one latency is measured.

    Args:
        warmup: untimed runs first (allocations, kernel selection, caches).
        repeats: timed runs, at most.
        min_repeats: timed runs, at least (slow blocks stop after `max_seconds`).
        min_seconds: keep timing fast blocks at least this long, so that their median spans
            more than one burst of another process's work on a shared core.
        max_seconds: time budget of the timed runs of one block.
        reject_mad: samples further than this many scaled MADs (1.4826 x median absolute
            deviation, the normal-consistent scale) from the median are rejected.
    """

    warmup: int = 3
    repeats: int = 15
    min_repeats: int = 5
    min_seconds: float = 0.2
    max_seconds: float = 1.5
    reject_mad: float = 3.0

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise OptionError(f"--repeats must be at least 1, got {self.repeats}")
        if self.warmup < 0 or not 1 <= self.min_repeats <= self.repeats:
            raise OptionError("timing needs warmup >= 0 and 1 <= min_repeats <= repeats")
        if (
            not 0 <= self.min_seconds <= self.max_seconds
            or self.max_seconds <= 0
            or self.reject_mad <= 0
        ):
            raise OptionError(
                "timing needs 0 <= min_seconds <= max_seconds, max_seconds > 0 and reject_mad > 0"
            )

    def describe(self) -> dict:
        d = asdict(self)
        d["statistic"] = (
            f"median of the timed runs after rejecting samples beyond "
            f"{self.reject_mad:g} x 1.4826 x MAD of the median; one input, batch 1, "
            "wall clock (perf_counter) around one backend call, CUDA synchronised"
        )
        return d


@dataclass(frozen=True)
class Timing:
    ms: float
    mad_ms: float
    kept: int
    runs: int


def robust_median(samples_ms: list[float], reject_mad: float = 3.0) -> Timing:
    """Median after rejecting outliers (another process waking up on a shared core)."""
    med = statistics.median(samples_ms)
    mad = statistics.median(abs(s - med) for s in samples_ms) * 1.4826
    kept = [s for s in samples_ms if mad == 0 or abs(s - med) <= reject_mad * mad]
    return Timing(statistics.median(kept), mad, len(kept), len(samples_ms))


def time_call(
    run: Callable[[], object], method: TimingMethod, sync: Callable[[], None] = lambda: None
) -> Timing:
    """Warm up, then time `run`: at least `min_repeats` runs; stop after `repeats` runs once
    `min_seconds` have passed, or after `max_seconds` in any case."""
    for _ in range(method.warmup):
        run()
    sync()
    samples: list[float] = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        run()
        sync()
        samples.append((time.perf_counter() - t0) * 1e3)
        elapsed = time.perf_counter() - start
        if len(samples) >= method.min_repeats and (
            elapsed > method.max_seconds
            or (len(samples) >= method.repeats and elapsed >= method.min_seconds)
        ):
            break
    return robust_median(samples, method.reject_mad)
