"""The genotype: a network described as data.

A genotype names the candidate on every edge of the operation and attention search
modules and the sizes of the network. It is a frozen dataclass that round-trips through
JSON and through a compact one-line string (for logs and the command line); `JSNet` is
built from it, whether it is the paper's, a searched one or a hand-made one.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from jsnet_edge.errors import GenotypeError
from jsnet_edge.models.attentions import ATTENTIONS
from jsnet_edge.models.fileinfo import size_problem
from jsnet_edge.models.ops import OPS

# Short names for the compact string form; the long names are the ones stored in JSON.
OP_ALIASES = {"sep": "sep_conv_3x3", "dil": "dil_conv_3x3", "skip": "skip_connect"}
ATT_ALIASES = {
    "skip": "skip_connect",
    "pa": "pixel_wise_attention",
    "ca": "channel_wise_attention",
    "cca": "contrast_aware_channel_attention",
    "sa": "spatial_attention",
    "sa2": "spatial_attention_v2",
}


def edge_count(nodes: int) -> int:
    """Edges of a module with `nodes` nodes: node k receives one edge from each state j < k."""
    return nodes * (nodes + 1) // 2


def edges(nodes: int) -> list[tuple[int, int]]:
    """(node, input state) of every edge, in the storage order (1,0), (2,0), (2,1), ..."""
    return [(k, j) for k in range(1, nodes + 1) for j in range(k)]


@dataclass(frozen=True)
class Genotype:
    """Operation and attention on every edge, plus the sizes of the network.

    Args:
        ops: one OSM candidate per edge, in `edges(nodes)` order.
        attentions: one ASM candidate per edge, same order.
        width: operation width C; a cell's working width is 4 C.
        cells: number of joint search modules.
        nodes: nodes per search module (the paper uses 3).
        unshuffle: the body runs at 1/unshuffle of the input resolution: the input is
            pixel-unshuffled (space to depth, lossless) before the head and the tail
            shuffles back. 1 is the paper's network; 2 quarters the cost of every block,
            which is what real-time networks on CPUs need (as FFDNet does for denoising).
            Unshuffled SR networks predict a residual over a bilinear upscale.
        recurrent: video: the head also reads the previous restored frame (the current
            frame itself on a first frame, a still image or a scene cut), so a denoiser
            can use the frames before with no look-ahead and nearly no compute (one wider
            first convolution). Camera noise is fresh in every frame while the scene is
            not; trained on moving clips (`jsnet_edge.train.clips`).
        csfm: the paper's cross-scale fusion module between the body and the tail. False
            puts a 1x1 convolution (4C -> 2C) in its place: at 1280x720 the CSFM of
            `denoise-rt` is 17% of its time (two 3x3 stages and four channel attentions,
            each a pass over the whole frame), a share a 720p real-time budget cannot pay.
    """

    ops: tuple[str, ...]
    attentions: tuple[str, ...]
    width: int = 16
    cells: int = 5
    nodes: int = 3
    unshuffle: int = 1
    recurrent: bool = False
    csfm: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", tuple(OP_ALIASES.get(o, o) for o in self.ops))
        object.__setattr__(
            self, "attentions", tuple(ATT_ALIASES.get(a, a) for a in self.attentions)
        )
        for name, value, low in (
            ("width", self.width, 4),
            ("cells", self.cells, 1),
            ("nodes", self.nodes, 1),
            ("unshuffle", self.unshuffle, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise GenotypeError(f"genotype {name} must be an integer >= {low}, got {value!r}")
        if not isinstance(self.recurrent, bool):
            raise GenotypeError(f"genotype recurrent must be true or false, got {self.recurrent!r}")
        if not isinstance(self.csfm, bool):
            raise GenotypeError(f"genotype csfm must be true or false, got {self.csfm!r}")
        if self.width % 4:
            raise GenotypeError(f"genotype width must be a multiple of 4, got {self.width}")
        problem = size_problem(self.to_dict())  # bounded before any network is built
        if problem:
            raise GenotypeError(problem)
        n = edge_count(self.nodes)
        for field, values, space in (
            ("ops", self.ops, OPS),
            ("attentions", self.attentions, ATTENTIONS),
        ):
            if len(values) != n:
                raise GenotypeError(
                    f"genotype has {len(values)} {field} but {self.nodes} nodes need {n} edges"
                )
            unknown = [v for v in values if v not in space]
            if unknown:
                raise GenotypeError(
                    f"unknown {field[:-1]} {unknown[0]!r}; choose from {', '.join(space)}"
                )

    @property
    def features(self) -> int:
        """Working width of a cell (the head, cell and fusion width): 4 C."""
        return 4 * self.width

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["ops"], d["attentions"] = list(self.ops), list(self.attentions)
        if not self.recurrent:  # single-frame genotypes keep the form files already hold
            del d["recurrent"]
        if self.csfm:  # so do the paper's CSFM ones
            del d["csfm"]
        return d

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: dict) -> Genotype:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise GenotypeError(f"unknown genotype keys: {', '.join(sorted(unknown))}")
        try:
            return cls(**{k: tuple(v) if k in ("ops", "attentions") else v for k, v in d.items()})
        except TypeError as e:
            raise GenotypeError(f"incomplete genotype: {e}") from None

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise GenotypeError(f"genotype is not valid JSON: {e}") from None
        if not isinstance(d, dict):
            raise GenotypeError("genotype JSON must be an object")
        return cls.from_dict(d)

    def to_string(self) -> str:
        """Compact form, e.g. `C16-L5-N3:rb,lrb,rb,rb,srb,rb:esab,cea,cea,esab,skip,cea`
        (`C8-L2-N2-S2:...` with unshuffle 2, `C8-L1-N2-S2-R:...` recurrent,
        `C8-L1-N2-S2-P:...` with a plain 1x1 convolution in place of the CSFM)."""
        op_short = {v: k for k, v in OP_ALIASES.items()}
        att_short = {v: k for k, v in ATT_ALIASES.items()}
        ops = ",".join(op_short.get(o, o) for o in self.ops)
        atts = ",".join(att_short.get(a, a) for a in self.attentions)
        sizes = f"C{self.width}-L{self.cells}-N{self.nodes}"
        if self.unshuffle > 1:
            sizes += f"-S{self.unshuffle}"
        if not self.csfm:
            sizes += "-P"
        if self.recurrent:
            sizes += "-R"
        return f"{sizes}:{ops}:{atts}"

    @classmethod
    def from_string(cls, text: str) -> Genotype:
        try:
            sizes, ops, atts = text.strip().split(":")
            c, lay, n, *rest = sizes.split("-")
            recurrent = rest[-1:] == ["R"]
            rest = rest[:-1] if recurrent else rest
            plain = rest[-1:] == ["P"]
            rest = rest[:-1] if plain else rest
            if (
                (c[0], lay[0], n[0]) != ("C", "L", "N")
                or len(rest) > 1
                or (rest and rest[0][:1] != "S")
            ):
                raise ValueError
            return cls(
                tuple(ops.split(",")),
                tuple(atts.split(",")),
                int(c[1:]),
                int(lay[1:]),
                int(n[1:]),
                int(rest[0][1:]) if rest else 1,
                recurrent,
                not plain,
            )
        except ValueError:
            raise GenotypeError(
                f"cannot read genotype string {text!r}; expected the form "
                "C16-L5-N3:rb,lrb,rb,rb,srb,rb:esab,cea,cea,esab,skip,cea (sizes may end in "
                "-S2 for a body unshuffled by 2, -P for a plain fusion in place of the CSFM "
                "and -R for a recurrent network, in that order)"
            ) from None

    def __str__(self) -> str:
        return self.to_string()


# The genotype searched in the paper; the released x2, x3, x4 checkpoints all use it.
PAPER = Genotype(
    ops=("rb", "lrb", "rb", "rb", "srb", "rb"),
    attentions=("esab", "cea", "cea", "esab", "skip_connect", "cea"),
)

GENOTYPES: dict[str, Genotype] = {"paper": PAPER}


def resolve_genotype(spec: str | Path | Genotype) -> Genotype:
    """A genotype from a name (`paper`), a JSON file, a JSON text or the compact string."""
    if isinstance(spec, Genotype):
        return spec
    text = str(spec)
    if text in GENOTYPES:
        return GENOTYPES[text]
    path = Path(text)
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise GenotypeError(f"genotype file {text} does not exist")
        try:
            raw = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise GenotypeError(f"cannot read genotype file {text}: {e}") from None
        # A search run's genotype.json may wrap the genotype with other facts.
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            raise GenotypeError(f"genotype file {text} is not valid JSON: {e}") from None
        if isinstance(data, dict) and "genotype" in data and isinstance(data["genotype"], dict):
            data = data["genotype"]
        if not isinstance(data, dict):
            raise GenotypeError(f"genotype file {text} must hold a JSON object")
        return Genotype.from_dict(data)
    if text.lstrip().startswith("{"):
        return Genotype.from_json(text)
    if ":" in text:
        return Genotype.from_string(text)
    raise GenotypeError(
        f"unknown genotype {text!r}: give a name ({', '.join(GENOTYPES)}), a JSON file "
        "or a compact string such as " + PAPER.to_string()
    )
