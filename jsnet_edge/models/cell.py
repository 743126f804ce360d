"""The joint search module (JSM): an operation search module followed by an attention
search module, as one residual cell of JSNet."""

from __future__ import annotations

import torch
from torch import nn

from jsnet_edge.models.attentions import ATTENTIONS
from jsnet_edge.models.genotype import edges
from jsnet_edge.models.ops import OPS


def node_sums(states: list[torch.Tensor], blocks: nn.ModuleList, nodes: int) -> list[torch.Tensor]:
    """Grow the DAG: node k is the sum of its edges' blocks applied to every earlier state.

    Shared by the operation and the attention module, and by the supernet's mixed edges.
    """
    i = 0
    for k in range(1, nodes + 1):
        total = None
        for j in range(k):
            out = blocks[i](states[j])
            total = out if total is None else total + out
            i += 1
        states.append(total)
    return states


class JointSearchCell(nn.Module):
    """One JSM: features (4C) -> `process` (C) -> operation DAG -> fusion of all operation
    states (back to 4C) -> attention DAG -> last attention node + the cell input.

    Sub-module names match the authors' checkpoints (`process`, `ops.i`,
    `op_nodes_fusion`, `atts.i`).
    """

    def __init__(
        self, ops: tuple[str, ...], attentions: tuple[str, ...], width: int, nodes: int
    ) -> None:
        super().__init__()
        features = 4 * width
        self.nodes = nodes
        self.process = nn.Conv2d(features, width, 1)
        self.ops = nn.ModuleList(OPS[name](width) for name in ops)
        self.op_nodes_fusion = nn.Conv2d((nodes + 1) * width, features, 1)
        self.atts = nn.ModuleList(ATTENTIONS[name](features) for name in attentions)
        assert len(self.ops) == len(self.atts) == len(edges(nodes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = node_sums([self.process(x)], self.ops, self.nodes)
        fused = self.op_nodes_fusion(torch.cat(states, 1))
        return x + node_sums([fused], self.atts, self.nodes)[-1]
