"""The latency table: measured block latencies for one device, backend, precision and input.

A network's latency is predicted as the sum of its blocks (head, per cell: the cell's
overhead plus the operation and attention on every edge; the fusion for its depth; CSFM, or
the plain fusion, and tail), times a per-table linear correction `measured ~ a * sum + b`
fitted on whole random networks (`profile --validate`), because a plain sum misses operator
fusion across blocks and memory effects. The same table gives the search its differentiable
expected latency.

Tables are JSON, keyed by a device fingerprint. `find_table` looks in the tables shipped in
`jsnet_edge/search/tables/` first, then in the user cache (`$XDG_CACHE_HOME/jsnet-edge/
latency/`, by default `~/.cache/jsnet-edge/latency/`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch import nn

from jsnet_edge.cache import cache_dir as user_cache_dir
from jsnet_edge.errors import OptionError
from jsnet_edge.models.attentions import ATTENTIONS
from jsnet_edge.models.cell import JointSearchCell
from jsnet_edge.models.csfm import CrossScaleFusion
from jsnet_edge.models.genotype import Genotype
from jsnet_edge.models.ops import OPS
from jsnet_edge.models.tails import make_tail
from jsnet_edge.outputs import atomic_output
from jsnet_edge.search.space import ATT_CHOICES, ATT_NAMES, OP_CHOICES, OP_NAMES, SearchSpace
from jsnet_edge.tasks import task_scale

SHIPPED = Path(__file__).with_name("tables")
CALL = "call"


class LatencyTableError(OptionError):
    """A table that does not cover a network, or that cannot be read."""


# --- keys and the modules they time ------------------------------------------------------


def op_key(name: str, width: int) -> str:
    return f"op:{name}:C{width}"


def att_key(name: str, width: int) -> str:
    return f"att:{name}:F{4 * width}"


def head_key(width: int) -> str:
    return f"head:C{width}"


def cell_key(width: int, nodes: int) -> str:
    return f"cell:C{width}:N{nodes}"


def fusion_key(width: int, cells: int) -> str:
    return f"fusion:C{width}:L{cells}"


def tail_key(width: int, csfm: bool = True) -> str:
    """The CSFM and tail (the key tables have always had), or with P the plain fusion."""
    return f"tail:C{width}" if csfm else f"tail:C{width}:P"


def genotype_keys(g: Genotype) -> list[str]:
    """Every entry the prediction of `g` reads (a key appears once per use)."""
    per_cell = [cell_key(g.width, g.nodes)]
    per_cell += [op_key(o, g.width) for o in g.ops if o != "skip_connect"]
    per_cell += [att_key(a, g.width) for a in g.attentions if a != "skip_connect"]
    return [
        CALL,
        head_key(g.width),
        fusion_key(g.width, g.cells),
        tail_key(g.width, g.csfm),
    ] + per_cell * g.cells


def space_keys(space: SearchSpace) -> list[str]:
    """Every entry a search over `space` needs."""
    keys = [CALL]
    for w in space.widths:
        keys += [head_key(w), cell_key(w, space.nodes)]
        keys += [tail_key(w, c) for c in space.csfm]
        keys += [fusion_key(w, d) for d in space.depths]
        keys += [op_key(o, w) for o in OP_CHOICES if o != "skip_connect"]
        keys += [att_key(a, w) for a in ATT_CHOICES if a != "skip_connect"]
    return keys


class _Fusion(nn.Module):
    """The network's fusion for a depth: 1x1 conv over the concatenated cell outputs, plus
    the head output (the same tensor stands in for all of them: shapes are what cost)."""

    def __init__(self, features: int, cells: int) -> None:
        super().__init__()
        self.cells = cells
        self.conv = nn.Conv2d(cells * features, features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([x] * self.cells, 1)) + x


class _Head(nn.Module):
    """Input mean shift (a per-channel add once folded), the unshuffle (if any) and the
    head convolution; its input is the full-resolution frame."""

    def __init__(self, colors: int, features: int, unshuffle: int = 1) -> None:
        super().__init__()
        self.register_buffer("mean", torch.full((1, colors, 1, 1), -110.0))
        self.unshuffle = nn.PixelUnshuffle(unshuffle) if unshuffle > 1 else nn.Identity()
        self.conv = nn.Conv2d(colors * unshuffle * unshuffle, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.unshuffle(x + self.mean))


def _tail(
    features: int, colors: int, scale: int, unshuffle: int = 1, csfm: bool = True
) -> nn.Module:
    """The fusion before the tail (as `JSNet` builds it) and the tail."""
    fusion = CrossScaleFusion(features) if csfm else nn.Conv2d(features, features // 2, 1)
    return nn.Sequential(fusion, make_tail(features // 2, colors, scale, unshuffle))


def block_for(key: str, task: str, colors: int, unshuffle: int = 1) -> tuple[nn.Module, int]:
    """The module an entry times and its input channels (the input is 1 x ch x H x W: the
    frame for the head, the body's resolution, 1/unshuffle of it, for everything else)."""
    kind, *rest = key.split(":")
    if kind == CALL:
        return nn.Identity(), 1
    value = {p[0]: int(p[1:]) for p in rest if p[0] in "CFLN" and p[1:].isdigit()}
    if kind == "op":
        return OPS[rest[0]](value["C"]), value["C"]
    if kind == "att":
        return ATTENTIONS[rest[0]](value["F"]), value["F"]
    c = value["C"]
    f = 4 * c
    if kind == "head":
        return _Head(colors, f, unshuffle), colors
    if kind == "cell":
        n = value["N"]
        skips = ("skip_connect",) * (n * (n + 1) // 2)
        return JointSearchCell(skips, skips, c, n), f
    if kind == "fusion":
        return _Fusion(f, value["L"]), f
    if kind == "tail":
        return _tail(f, colors, task_scale(task), unshuffle, csfm="P" not in rest), f
    raise LatencyTableError(f"unknown latency-table key {key!r}")


# --- the table -----------------------------------------------------------------------------


def fingerprint_id(fp: dict) -> str:
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]


def cache_dir() -> Path:
    return user_cache_dir("latency")


@dataclass
class LatencyTable:
    """Measured latencies (ms) of blocks, for the machine described by `fingerprint`.

    Attributes:
        entries: key -> {"ms", "mad_ms", "kept", "runs"}; "ms" is the block's median minus
            the fixed cost of one backend call (the `call` entry), which a network pays once.
        method: how every entry was timed.
        correction: {"a", "b"}: predicted = a * (sum of entries) + b; a = 1, b = 0 until a
            validation fits them.
        validation: the last `--validate` run (genotypes, raw sums, measured, errors).
    """

    fingerprint: dict
    entries: dict[str, dict] = field(default_factory=dict)
    method: dict = field(default_factory=dict)
    correction: dict = field(default_factory=lambda: {"a": 1.0, "b": 0.0, "fitted": False})
    validation: dict | None = None
    created: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )

    @property
    def id(self) -> str:
        return fingerprint_id(self.fingerprint)

    @property
    def input_size(self) -> tuple[int, int]:
        w, h = self.fingerprint["input_size"]
        return int(w), int(h)

    def ms(self, key: str) -> float:
        try:
            return float(self.entries[key]["ms"])
        except KeyError:
            raise LatencyTableError(
                f"the latency table has no entry {key!r}; profile the search space again "
                "(jsnet-edge profile with the same --widths/--max-cells/--nodes)"
            ) from None

    def missing(self, keys: list[str]) -> list[str]:
        return [k for k in dict.fromkeys(keys) if k not in self.entries]

    def raw(self, g: Genotype) -> float:
        """Sum of the blocks of `g` (ms), before the correction."""
        return sum(self.ms(k) for k in genotype_keys(g))

    def correct(self, raw_ms: float) -> float:
        return float(self.correction["a"]) * raw_ms + float(self.correction["b"])

    def predict(self, g: Genotype) -> float:
        """Predicted latency of the whole network `g` (ms)."""
        return self.correct(self.raw(g))

    # JSON -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": "jsnet-edge latency table 1",
            "fingerprint": self.fingerprint,
            "id": self.id,
            "created": self.created,
            "method": self.method,
            "correction": self.correction,
            "validation": self.validation,
            "entries": self.entries,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> LatencyTable:
        try:
            d = json.loads(text)
            if d.get("format") != "jsnet-edge latency table 1":
                raise ValueError("not a jsnet-edge latency table")
            return cls(
                fingerprint=d["fingerprint"],
                entries=d["entries"],
                method=d["method"],
                correction=d["correction"],
                validation=d.get("validation"),
                created=d["created"],
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise LatencyTableError(f"cannot read the latency table ({e})") from None

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        path = Path(path)
        if not path.is_file():
            raise LatencyTableError(f"latency table {path} does not exist")
        try:
            return cls.from_json(path.read_text())
        except (UnicodeDecodeError, OSError) as e:
            raise LatencyTableError(
                f"cannot read the latency table {path}: it is not a jsnet-edge table ({e})"
            ) from None
        except LatencyTableError as e:
            raise LatencyTableError(f"{path}: {e}") from None

    def save(self, path: str | Path) -> Path:
        """Write atomically (a profile interrupted half way leaves the old table intact)."""
        path = Path(path)
        with atomic_output(path) as tmp:
            tmp.write_text(self.to_json())
        return path

    def cache_path(self) -> Path:
        return cache_dir() / f"{self.id}.json"


def find_table(fp: dict, extra: list[Path] = ()) -> tuple[LatencyTable, Path] | None:
    """The table for fingerprint `fp`: the shipped ones first, then the cache."""
    want = fingerprint_id(fp)
    candidates = sorted(SHIPPED.glob("*.json")) if SHIPPED.is_dir() else []
    candidates += [cache_dir() / f"{want}.json", *extra]
    for path in candidates:
        if not path.is_file():
            continue
        try:
            table = LatencyTable.load(path)
        except LatencyTableError:
            continue
        if table.id == want and table.fingerprint == fp:
            return table, path
    return None


# --- the correction -----------------------------------------------------------------------


def fit_correction(raw: list[float], measured: list[float]) -> tuple[float, float]:
    """a, b minimising the relative error of a * raw + b against measured (weighted least
    squares with weights 1/measured, since the error that matters is a percentage)."""
    r, m = np.asarray(raw, float), np.asarray(measured, float)
    if len(r) < 2 or np.ptp(r) == 0:
        return float(np.sum(m / r) / len(r)) if len(r) else 1.0, 0.0
    design = np.stack([r / m, 1 / m], 1)
    (a, b), *_ = np.linalg.lstsq(design, np.ones_like(m), rcond=None)
    if a <= 0:  # a degenerate fit (noise): fall back to a pure scale
        return float(np.median(m / r)), 0.0
    return float(a), float(b)


def mape(predicted: list[float], measured: list[float]) -> float:
    p, m = np.asarray(predicted, float), np.asarray(measured, float)
    return float(np.mean(np.abs(p - m) / m) * 100)


def loo_mape(raw: list[float], measured: list[float]) -> float | None:
    """Leave-one-out MAPE of the corrected prediction: each network predicted by a
    correction fitted without it (the honest error for networks the fit never saw)."""
    if len(raw) < 3:
        return None
    preds = []
    for i in range(len(raw)):
        a, b = fit_correction(raw[:i] + raw[i + 1 :], measured[:i] + measured[i + 1 :])
        preds.append(a * raw[i] + b)
    return mape(preds, measured)


# --- expected latency, for the search ----------------------------------------------------


class ExpectedLatency(nn.Module):
    """E[latency] of the supernet's derived network as a differentiable function of the
    architecture weights.

    E = a * (call + sum_w p_w [head_w + sum_c p_c tail_{w,c} + sum_d p_d (fusion_{w,d} +
    d E[cell | w])]) + b, with p_c over the space's CSFM choices and E[cell | w] =
    overhead_w + sum_e sum_o q_{e,o} op_{o,w} + sum_e sum_a r_{e,a} att_{a,w}. q and r are
    the softmaxes of alpha_op and alpha_att over the candidates other than `none`:
    derivation never keeps `none`, so its (near zero) latency must not make an edge look
    cheap. The edge weights beta do not enter: derivation keeps every edge whatever its
    beta, and a per-edge factor cannot change which candidate wins on it.
    """

    def __init__(self, table: LatencyTable, space: SearchSpace) -> None:
        super().__init__()
        missing = table.missing(space_keys(space))
        if missing:
            raise LatencyTableError(
                f"the latency table lacks {len(missing)} entries of this "
                f"search space (e.g. {missing[0]}); profile it again"
            )
        ws = space.widths

        def t(values) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float32)

        def ms(key: str) -> float:
            return 0.0 if key.split(":")[1:2] == ["skip_connect"] else table.ms(key)

        self.register_buffer("op", t([[ms(op_key(o, w)) for o in OP_CHOICES] for w in ws]))
        self.register_buffer("att", t([[ms(att_key(a, w)) for a in ATT_CHOICES] for w in ws]))
        self.register_buffer("head", t([table.ms(head_key(w)) for w in ws]))
        self.register_buffer(
            "tail", t([[table.ms(tail_key(w, c)) for c in space.csfm] for w in ws])
        )
        self.register_buffer("cell", t([table.ms(cell_key(w, space.nodes)) for w in ws]))
        self.register_buffer(
            "fusion", t([[table.ms(fusion_key(w, d)) for d in space.depths] for w in ws])
        )
        self.register_buffer("depths", t(list(space.depths)))
        self.call = table.ms(CALL)
        self.a, self.b = float(table.correction["a"]), float(table.correction["b"])
        self.op_index = [OP_NAMES.index(o) for o in OP_CHOICES]
        self.att_index = [ATT_NAMES.index(a) for a in ATT_CHOICES]

    def forward(
        self,
        alpha_op: torch.Tensor,
        alpha_att: torch.Tensor,
        alpha_depth: torch.Tensor,
        alpha_width: torch.Tensor,
        alpha_csfm: torch.Tensor,
    ) -> torch.Tensor:
        q = torch.softmax(alpha_op[:, self.op_index], -1)  # edges x candidates
        r = torch.softmax(alpha_att[:, self.att_index], -1)
        p_d = torch.softmax(alpha_depth, 0)
        p_w = torch.softmax(alpha_width, 0)
        p_c = torch.softmax(alpha_csfm, 0)
        cell = self.cell + (q.sum(0) * self.op).sum(-1) + (r.sum(0) * self.att).sum(-1)
        per_width = self.head + (self.tail * p_c).sum(-1)
        per_width = per_width + ((self.fusion + self.depths * cell[:, None]) * p_d).sum(-1)
        return self.a * (self.call + (p_w * per_width).sum()) + self.b
