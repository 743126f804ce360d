"""The supernet: every candidate on every edge, every width and depth, weighted by
architecture parameters; `derive()` is the only way out of it.

Structure (as `JSNet`, at the largest width, with max_cells cells):
head -> cells -> for each depth d a 1x1 fusion of the first d cell outputs, mixed by
softmax(alpha_depth) -> + head -> CSFM (or the plain 1x1 fusion, or both mixed by
softmax(alpha_csfm) when the space searches it) -> tail. Inside a cell, every operation edge is a
`MixedOp` (partial channels, 7 candidates) scaled by its edge-normalisation weight (softmax
of beta over the edges entering the node, PC-DARTS), every attention edge a
`MixedAttention` (9 candidates), summed into nodes as `cell.node_sums` does. Widths are
channel masks (see `mixed.py`). Nodes per module are fixed by the search space.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from jsnet_edge.models.cell import node_sums
from jsnet_edge.models.csfm import CrossScaleFusion
from jsnet_edge.models.genotype import Genotype, edges
from jsnet_edge.models.network import RGB_MEAN, mean_shift, restore_output
from jsnet_edge.models.tails import make_tail
from jsnet_edge.search.mixed import MaskBank, MixedAttention, MixedOp
from jsnet_edge.search.space import ATT_NAMES, OP_NAMES, SearchSpace
from jsnet_edge.tasks import check_task, task_scale


def edge_norm(beta: torch.Tensor, nodes: int) -> torch.Tensor:
    """Softmax of beta over the edges that enter each node (edge order of `edges`)."""
    out, i = [], 0
    for k in range(1, nodes + 1):
        out.append(torch.softmax(beta[i : i + k], 0))
        i += k
    return torch.cat(out)


class SuperCell(nn.Module):
    """A joint search module with mixed edges, at the largest width of the space."""

    def __init__(self, space: SearchSpace, bank: MaskBank) -> None:
        super().__init__()
        c, n = max(space.widths), space.nodes
        f = 4 * c
        self.nodes = n
        self.process = nn.Conv2d(f, c, 1)
        bank.attach(self.process, lambda w: nn.Conv2d(4 * w, w, 1))
        self.ops = nn.ModuleList(MixedOp(c, space.partial, i, bank) for i in range(len(edges(n))))
        self.op_nodes_fusion = nn.Conv2d((n + 1) * c, f, 1)
        bank.attach(self.op_nodes_fusion, lambda w: nn.Conv2d((n + 1) * w, 4 * w, 1))
        self.atts = nn.ModuleList(MixedAttention(f, bank) for _ in edges(n))

    def _op_edge(
        self, i: int, w_op: torch.Tensor, w_edge: torch.Tensor, x: torch.Tensor
    ) -> torch.Tensor:
        return w_edge[i] * self.ops[i](x, w_op[i])

    def _att_edge(self, i: int, w_att: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.atts[i](x, w_att[i])

    def forward(
        self, x: torch.Tensor, w_op: torch.Tensor, w_edge: torch.Tensor, w_att: torch.Tensor
    ) -> torch.Tensor:
        n_edges = len(self.ops)
        op_edges = [partial(self._op_edge, i, w_op, w_edge) for i in range(n_edges)]
        states = node_sums([self.process(x)], op_edges, self.nodes)
        fused = self.op_nodes_fusion(torch.cat(states, 1))
        att_edges = [partial(self._att_edge, i, w_att) for i in range(n_edges)]
        return x + node_sums([fused], att_edges, self.nodes)[-1]


class SuperNet(nn.Module):
    """The search supernet for one task.

    Args:
        space: candidate sizes (widths, max cells, nodes, partial-channel factor).
        task: one of `jsnet_edge.tasks.TASKS` (decides the tail).
        colors: 1 or 3.

    Architecture parameters (`alphas()`): alpha_op (edges x 7), alpha_att (edges x 9),
    beta (edges), alpha_depth (max_cells), alpha_width (widths). Everything else is a
    network weight (`weights()`).
    """

    def __init__(self, space: SearchSpace, task: str = "sr-x2", colors: int = 3) -> None:
        super().__init__()
        self.space = space
        self.task = check_task(task)
        self.scale = task_scale(task)
        self.colors = colors
        c = max(space.widths)
        f = 4 * c
        self.bank = MaskBank(space.widths)
        mean = RGB_MEAN if colors == 3 else (sum(RGB_MEAN) / 3,)
        self.sub_mean = mean_shift(mean, sign=-1)
        self.anchored = self.scale > 1 and space.unshuffle > 1  # as JSNet
        self.add_mean = (
            mean_shift(mean, sign=+1) if self.scale > 1 and not self.anchored else nn.Identity()
        )
        u = space.unshuffle
        self.unshuffle = nn.PixelUnshuffle(u) if u > 1 else nn.Identity()
        self.head = nn.Conv2d(colors * u * u, f, 3, padding=1)
        self.bank.attach(self.head, lambda w: nn.Conv2d(colors * u * u, 4 * w, 3, padding=1))
        self.cells = nn.ModuleList(SuperCell(space, self.bank) for _ in space.depths)
        self.fusions = nn.ModuleList()
        for d in space.depths:
            fusion = nn.Conv2d(d * f, f, 1)
            self.bank.attach(fusion, lambda w, d=d: nn.Conv2d(d * 4 * w, 4 * w, 1))
            self.fusions.append(fusion)
        # the fusions before the tail the space allows, in the order of `space.csfm`
        self.csfm = nn.ModuleList()
        for paper in space.csfm:
            if paper:
                fuse = CrossScaleFusion(f)
                self.bank.attach(fuse, lambda w: CrossScaleFusion(4 * w))
            else:
                fuse = nn.Conv2d(f, f // 2, 1)
                self.bank.attach(fuse, lambda w: nn.Conv2d(4 * w, 2 * w, 1))
            self.csfm.append(fuse)
        self.tail = make_tail(f // 2, colors, self.scale, u)
        self.bank.attach(self.tail, lambda w: make_tail(2 * w, colors, self.scale, u))
        if self.scale == 1 or self.anchored:
            nn.init.zeros_(self.tail[0].weight)
            nn.init.zeros_(self.tail[0].bias)
        n = space.edges
        self.alpha_op = nn.Parameter(1e-3 * torch.randn(n, len(OP_NAMES)))
        self.alpha_att = nn.Parameter(1e-3 * torch.randn(n, len(ATT_NAMES)))
        self.beta = nn.Parameter(1e-3 * torch.randn(n))
        self.alpha_depth = nn.Parameter(torch.zeros(space.max_cells))
        self.alpha_width = nn.Parameter(torch.zeros(len(space.widths)))
        self.alpha_csfm = nn.Parameter(torch.zeros(len(space.csfm)))

    ALPHA_NAMES = ("alpha_op", "alpha_att", "beta", "alpha_depth", "alpha_width", "alpha_csfm")

    def named_alphas(self) -> dict[str, nn.Parameter]:
        return {name: getattr(self, name) for name in self.ALPHA_NAMES}

    def alphas(self) -> list[nn.Parameter]:
        """Architecture parameters (optimised on validation patches)."""
        return list(self.named_alphas().values())

    def weights(self) -> list[nn.Parameter]:
        """Network weights (optimised on training patches); the fixed mean shifts excluded."""
        arch = {id(p) for p in self.alphas()}
        return [p for p in self.parameters() if p.requires_grad and id(p) not in arch]

    def probabilities(self) -> dict[str, torch.Tensor]:
        """Softmaxes of the architecture parameters (beta normalised per node)."""
        return {
            "op": torch.softmax(self.alpha_op, -1),
            "att": torch.softmax(self.alpha_att, -1),
            "edge": edge_norm(self.beta, self.space.nodes),
            "depth": torch.softmax(self.alpha_depth, 0),
            "width": torch.softmax(self.alpha_width, 0),
            "csfm": torch.softmax(self.alpha_csfm, 0),
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.probabilities()
        self.bank.set(p["width"])
        h = self.head(self.unshuffle(self.sub_mean(x)))
        outs, c = [], h
        for cell in self.cells:
            c = cell(c, p["op"], p["edge"], p["att"])
            outs.append(c)
        f = h
        for d, fusion in enumerate(self.fusions):
            f = f + p["depth"][d] * fusion(torch.cat(outs[: d + 1], 1))
        y = self.tail(sum(p["csfm"][i] * fuse(f) for i, fuse in enumerate(self.csfm)))
        return restore_output(x, y, self.scale, self.anchored, self.add_mean)

    @torch.no_grad()
    def derive(self, max_skip: int | None = None) -> Genotype:
        """The network the search chose: on every edge the strongest candidate other than
        `none` (operation weights times the edge's normalised beta, as in PC-DARTS; every
        node keeps all its input edges), the most likely depth, width and fusion.

        `max_skip` limits the operation edges that keep `skip_connect` (as P-DARTS does):
        differentiable search drifts towards the parameter-free skip, the more so under a
        latency term for which it is free; edges over the limit take their strongest real
        operation, those where skip leads by the least first. The budget step that follows
        may still give an edge up to skip, by measurement."""
        p = self.probabilities()
        op_w = p["op"] * p["edge"][:, None]
        op_w[:, OP_NAMES.index("none")] = -1
        att_w = p["att"].clone()
        att_w[:, ATT_NAMES.index("none")] = -1
        op_idx = op_w.argmax(-1).tolist()
        skip = OP_NAMES.index("skip_connect")
        skipped = [e for e, i in enumerate(op_idx) if i == skip]
        if max_skip is not None and len(skipped) > max_skip:
            real = op_w.clone()
            real[:, skip] = -1
            lead = {e: float(op_w[e, skip] - real[e].max()) for e in skipped}
            for e in sorted(skipped, key=lead.get)[: len(skipped) - max_skip]:
                op_idx[e] = int(real[e].argmax())
        ops = tuple(OP_NAMES[i] for i in op_idx)
        atts = tuple(ATT_NAMES[i] for i in att_w.argmax(-1).tolist())
        return Genotype(
            ops,
            atts,
            width=self.space.widths[int(p["width"].argmax())],
            cells=int(p["depth"].argmax()) + 1,
            nodes=self.space.nodes,
            unshuffle=self.space.unshuffle,
            csfm=self.space.csfm[int(p["csfm"].argmax())],
        )

    @torch.no_grad()
    def snapshot(self) -> dict:
        """The architecture weights as plain lists (for reports)."""
        return {
            k: [round(v, 5) for v in t.tolist()]
            if t.dim() == 1
            else [[round(v, 5) for v in row] for row in t.tolist()]
            for k, t in self.probabilities().items()
        }
