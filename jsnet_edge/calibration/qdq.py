"""Edits of Q/DQ graphs: which convolutions are int8, and bypassing the pairs of blocks
that stay in float (the block search after quantisation-aware fine-tuning)."""

from __future__ import annotations

import numpy as np

from jsnet_edge.calibration.quantize import outside

QDQ = ("QuantizeLinear", "DequantizeLinear")


def keep_float(proto, int8_groups: list[str] | None):
    """A copy of a Q/DQ graph where the nodes outside `int8_groups` (None: all int8) read
    the float tensors their Q/DQ pairs quantised (weights and activations): the pair is
    bypassed for them, and dropped where nothing else reads it."""
    out = type(proto)()
    out.CopyFrom(proto)
    if int8_groups is None:
        return out
    g = out.graph
    q_input = {n.output[0]: n.input[0] for n in g.node if n.op_type == "QuantizeLinear"}
    float_of = {
        n.output[0]: q_input[n.input[0]]
        for n in g.node
        if n.op_type == "DequantizeLinear" and n.input[0] in q_input
    }
    ops = [n.name for n in g.node if n.op_type not in QDQ and n.op_type != "Constant"]
    floats = set(outside(ops, int8_groups))
    for n in g.node:
        if n.name in floats:
            for i, name in enumerate(n.input):
                if name in float_of:
                    n.input[i] = float_of[name]
    _prune(g)
    return out


def _prune(g) -> None:
    """Drop nodes whose outputs nothing reads (bypassed Q/DQ pairs and their scales)."""
    while True:
        used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
        dead = [n for n in g.node if not any(o in used for o in n.output)]
        if not dead:
            return
        for n in dead:
            g.node.remove(n)


def conv_costs(proto) -> dict[str, int]:
    """Weight size of each convolution (its weight arrives through a DQ of a Q)."""
    g = proto.graph
    sizes = {i.name: int(np.prod(i.dims)) for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    costs = {}
    for n in g.node:
        if n.op_type != "Conv":
            continue
        w = n.input[1]
        while w in producer and producer[w].op_type in QDQ:
            w = producer[w].input[0]
        costs[n.name] = sizes.get(w, 0)
    return costs


def int8_convs(proto) -> int:
    producer = {o: n.op_type for n in proto.graph.node for o in n.output}
    return sum(
        producer.get(n.input[1]) == "DequantizeLinear"
        for n in proto.graph.node
        if n.op_type == "Conv"
    )
