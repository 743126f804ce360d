"""`SearchConfig`: the options of a search, checked without touching the disk, and the
latency budgets as users write them."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from jsnet_edge.degradations import NOISES
from jsnet_edge.errors import OptionError
from jsnet_edge.outputs import check_output
from jsnet_edge.runtime.capabilities import device_type
from jsnet_edge.runtime.timing import TimingMethod
from jsnet_edge.search.profile import ProfileConfig
from jsnet_edge.search.space import SearchSpace
from jsnet_edge.search.timing import check_target
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


@dataclass(frozen=True)
class SearchConfig:
    """Options of `search`.

    Args:
        task: sr-x2, sr-x3, sr-x4, denoise or jpeg.
        data: folder of training photographs.
        out: run folder (genotype.json, report.json, latency_table.json, pareto.png).
        budgets: latency budgets in ms (numbers, or text such as "10ms" / "0.5s"); the first
            is the run's main result (genotype.json), the others make a sweep (one search
            per budget after a shared warm-up).
        device, backend, precision, input_size: the deployment target; input_size is the
            network input (W, H) (for SR, the low-resolution frame).
        val: folder of validation photographs for the architecture steps and the PSNR;
            default: `data` with another seed.
        steps: supernet steps per budget, warm-up included.
        warmup_steps: weights-only steps before the architecture steps (default steps // 4).
        finetune_steps: training steps of each derived network for its PSNR (>= 1).
        widths, max_cells, nodes, partial, unshuffle, csfm: the search space (see
            `SearchSpace`).
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
        noise: denoising's degradation, as `Degradation.noise` ("gaussian" or "camera"):
            the search ranks operations on the noise the network will meet.
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
    csfm: tuple[bool, ...] = (True,)
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
    noise: str = "gaussian"
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
        if not self.budgets:
            raise OptionError("give at least one latency budget")
        budgets = self.budgets_ms
        if len(set(budgets)) != len(budgets):
            raise OptionError("the budgets of a sweep must differ")
        if self.steps < 1:
            raise OptionError(f"--steps must be at least 1, got {self.steps}")
        if not 0 <= self.warmup < self.steps:
            raise OptionError(f"--warmup-steps must be in [0, steps), got {self.warmup}")
        if self.finetune_steps < 1:
            raise OptionError(
                "--finetune-steps must be at least 1 (the PSNR of each result comes from it)"
            )
        if self.batch < 1:
            raise OptionError(f"--batch must be at least 1, got {self.batch}")
        if self.noise not in NOISES:
            raise OptionError(f"--noise must be one of {', '.join(NOISES)}, not {self.noise!r}")
        if self.noise != "gaussian" and self.task != "denoise":
            raise OptionError(f"--noise applies to --task denoise, not {self.task}")
        scale = task_scale(self.task)
        m = scale * self.unshuffle
        if self.unshuffle < 1:
            raise OptionError(f"--unshuffle must be 1 or more, got {self.unshuffle}")
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
        if device_type(self.train_device) not in ("cpu", "cuda"):
            raise OptionError(f"--train-device must be cpu or cuda, not {self.train_device!r}")
        if self.train_precision not in ("fp32", "bf16"):
            raise OptionError(
                f"training precision must be fp32 or bf16, not {self.train_precision}"
            )
        _ = self.space  # validates the sizes
        if self.runtime_threads is not None and self.runtime_threads < 1:
            raise OptionError(f"--runtime-threads must be >= 1, got {self.runtime_threads}")
        if self.threads is not None and self.threads < 1:
            raise OptionError(f"--threads must be >= 1, got {self.threads}")

    def check_paths(self) -> None:
        """What the disk must hold before the search starts (read only)."""
        if not Path(self.data).is_dir():
            raise OptionError(f"training data folder {self.data} does not exist")
        if self.val is not None and not Path(self.val).is_dir():
            raise OptionError(f"validation folder {self.val} does not exist")
        if (Path(self.out) / "report.json").exists() and not self.overwrite:
            raise OptionError(
                f"{self.out} holds an earlier search (report.json); choose "
                "another --out or pass --overwrite"
            )
        check_output(Path(self.out) / "report.json", overwrite=True)

    @property
    def budgets_ms(self) -> tuple[float, ...]:
        return tuple(parse_budget(b) for b in self.budgets)

    @property
    def warmup(self) -> int:
        """Weights-only steps before the architecture steps."""
        return self.steps // 4 if self.warmup_steps is None else self.warmup_steps

    @property
    def out_dir(self) -> Path:
        return Path(self.out)

    @property
    def space(self) -> SearchSpace:
        return SearchSpace(
            tuple(self.widths),
            self.max_cells,
            self.nodes,
            self.partial,
            self.unshuffle,
            tuple(self.csfm),
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
        d["budgets"] = list(self.budgets_ms)
        d["warmup_steps"] = self.warmup
        d["widths"] = list(self.widths)
        d["csfm"] = list(self.space.csfm)
        d["input_size"] = list(self.input_size)
        d["timing"] = self.timing.describe()
        return d
