"""The search space: candidates on every edge, and the sizes the search may choose.

Beyond the paper, widths and depths are searched too, so that budgets far below the
paper's network are reachable, and so may be the fusion before the tail (the paper's CSFM
or a plain 1x1 convolution, `Genotype.csfm`). Nodes per module are a fixed setting of the
supernet (not searched): a node count changes the edge set, which a mask cannot express
cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jsnet_edge.errors import OptionError
from jsnet_edge.models.attentions import ATTENTIONS
from jsnet_edge.models.genotype import Genotype, edge_count
from jsnet_edge.models.ops import OPS

OP_NAMES: tuple[str, ...] = tuple(OPS)
ATT_NAMES: tuple[str, ...] = tuple(ATTENTIONS)
# Derivation never keeps `none` (as in the paper), so neither do random or give-up networks.
OP_CHOICES = tuple(n for n in OP_NAMES if n != "none")
ATT_CHOICES = tuple(n for n in ATT_NAMES if n != "none")


@dataclass(frozen=True)
class SearchSpace:
    """Sizes of the supernet.

    Args:
        widths: choices for the operation width C (a cell works at 4 C); multiples of 4 and
            of `partial`.
        max_cells: depth choices are 1 .. max_cells joint search modules.
        nodes: nodes per search module, fixed (the paper's 3).
        partial: partial-channel factor k of the mixed operations (1/k of the channels go
            through the candidates, as in PC-DARTS); 1 turns it off.
        unshuffle: the networks' body runs at 1/unshuffle of the input resolution (see
            `Genotype`), fixed; 2 reaches real-time budgets on CPUs.
        csfm: the fusions the networks may have before the tail (`Genotype.csfm`): (True,)
            the paper's CSFM, (False,) the plain 1x1 convolution, (True, False) searched.
            At 1280x720 the CSFM is about 30% of a `denoise-rt`-sized network's
            multiply-adds and 17% of its time (OpenVINO bf16, 2 cores): a choice that
            real-time budgets want made by measurement, like the others.
    """

    widths: tuple[int, ...] = (8, 12, 16, 24)
    max_cells: int = 5
    nodes: int = 3
    partial: int = 4
    unshuffle: int = 1
    csfm: tuple[bool, ...] = (True,)

    def __post_init__(self) -> None:
        widths = tuple(sorted({int(w) for w in self.widths}))
        object.__setattr__(self, "widths", widths)
        if not widths:
            raise OptionError("the search space needs at least one width")
        if self.partial < 1:
            raise OptionError(f"partial-channel factor must be >= 1, got {self.partial}")
        for w in widths:
            if w < 4 or w % 4 or w % self.partial:
                raise OptionError(
                    f"widths must be multiples of 4 and of the partial-channel "
                    f"factor {self.partial}, got {w}"
                )
        if self.max_cells < 1:
            raise OptionError(f"max cells must be >= 1, got {self.max_cells}")
        if self.nodes < 1:
            raise OptionError(f"nodes must be >= 1, got {self.nodes}")
        if self.unshuffle not in (1, 2, 3, 4):
            raise OptionError(f"unshuffle must be 1, 2, 3 or 4, got {self.unshuffle}")
        choices = (self.csfm,) if isinstance(self.csfm, bool) else tuple(self.csfm)
        if not choices or any(not isinstance(c, bool) for c in choices):
            raise OptionError(f"csfm choices must be True and/or False, got {self.csfm!r}")
        # one order, CSFM first, so that the architecture weights index the same way
        object.__setattr__(self, "csfm", tuple(c for c in (True, False) if c in choices))

    def narrow_widths(self, scale: int, colors: int) -> tuple[int, ...]:
        """Widths too narrow to carry a full-resolution residual: for same-size tasks
        (denoising, JPEG), the tail sees 2 C channels (the CSFM halves the 4 C body) per
        `unshuffle`^2 x colours input values. Below that, the output cannot hold the detail:
        measured, a C8 denoiser at --unshuffle 4 (16 channels for 48 values) stayed below its
        noisy input (29.2 vs 29.3 dB after 2840 steps) where C8 at --unshuffle 2 gained
        4.6 dB. SR tails add to an upscale, and are not held to it."""
        if scale != 1:
            return ()
        return tuple(w for w in self.widths if 2 * w < colors * self.unshuffle**2)

    @property
    def edges(self) -> int:
        return edge_count(self.nodes)

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(range(1, self.max_cells + 1))

    def contains(self, g: Genotype) -> bool:
        return (
            g.width in self.widths
            and 1 <= g.cells <= self.max_cells
            and g.nodes == self.nodes
            and g.unshuffle == self.unshuffle
            and g.csfm in self.csfm
        )

    def smallest(self) -> Genotype:
        """The cheapest network of the space: narrowest, one cell, identity edges, the plain
        fusion where the space has it."""
        n = self.edges
        return Genotype(
            ("skip_connect",) * n,
            ("skip_connect",) * n,
            self.widths[0],
            1,
            self.nodes,
            self.unshuffle,
            csfm=self.csfm[-1],
        )

    def random_genotype(self, rng: np.random.Generator) -> Genotype:
        n = self.edges
        ops = tuple(str(o) for o in rng.choice(OP_CHOICES, n))
        atts = tuple(str(a) for a in rng.choice(ATT_CHOICES, n))
        width = int(rng.choice(self.widths))
        cells = int(rng.integers(1, self.max_cells + 1))
        # drawn only when searched, so that a space without the choice draws as before
        csfm = self.csfm[0] if len(self.csfm) == 1 else bool(rng.integers(0, 2))
        return Genotype(ops, atts, width, cells, self.nodes, self.unshuffle, csfm=csfm)

    def to_dict(self) -> dict:
        return {
            "widths": list(self.widths),
            "max_cells": self.max_cells,
            "nodes": self.nodes,
            "partial": self.partial,
            "unshuffle": self.unshuffle,
            "csfm": list(self.csfm),
        }


CSFM_CHOICES = {"yes": (True,), "no": (False,), "search": (True, False)}


def parse_csfm(text: str) -> tuple[bool, ...]:
    """--csfm yes | no | search -> the space's fusion choices."""
    try:
        return CSFM_CHOICES[text.strip().lower()]
    except KeyError:
        raise OptionError(
            f"--csfm must be yes (the paper's cross-scale fusion), no (a plain 1x1 "
            f"convolution) or search (the search chooses), got {text!r}"
        ) from None


def parse_widths(text: str) -> tuple[int, ...]:
    """'8,12,16,24' -> (8, 12, 16, 24)."""
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise OptionError(f"--widths must be integers separated by commas, got {text!r}") from None
