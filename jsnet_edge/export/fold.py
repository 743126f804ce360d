"""Fold the linear 1x1 parts of an exported graph into the convolutions that read them.

JSNet's cells end in a chain of linear steps: the residual block's 1x1 `reduce` over a
channel concat, the cell's 1x1 `op_nodes_fusion` over another concat, the residual add, the
network's 1x1 `fusion` and its add of the head, then a 1x1 before the tail. Written out
as the modules are, a runtime makes one pass over memory per step, and at video sizes these
narrow layers are bound by memory, not arithmetic: at 1280x720 (OpenVINO bf16, one thread)
the concats alone ran on OpenVINO's reference kernel and the chain took a third of
`denoise-hd`'s time. Composed, the chain is one 1x1 convolution per tensor it starts from,
summed (a sum the runtimes fuse into the convolution).

Exact in real arithmetic: only 1x1 convolutions with no padding, channel concats and
same-shape adds are folded, never through a padded kernel (its zero border would not
carry a bias) or a non-linearity. Composition runs in float64; results differ from the
unfolded graph by float rounding only. Graphs with Q/DQ nodes are returned as they are
(their quantisation points are where the modules are), and so are graphs that are not
float32 or hold subgraphs. A tensor read by more than one node, or by anything but a
foldable step, is kept as it is, so no work is repeated.
"""

from __future__ import annotations

import numpy as np

QDQ = ("QuantizeLinear", "DequantizeLinear")
FOLD_VERSION = 1  # in the names of cached graphs: a change here re-exports them
_FIXED_SIDE = 240  # spatial size for shape inference of dynamic graphs (any multiple of 2..8)


def fold_linear(proto):
    """A copy of the ONNX `proto` with its chains of 1x1 convolutions, channel concats and
    adds folded (module docstring); the same graph when there is nothing to fold."""
    import onnx
    from onnx import numpy_helper

    g = proto.graph
    float32 = all(i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for i in g.input)
    # a subgraph (If, Loop) may read tensors that this pass would not see being read
    subgraphs = any(
        a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
        for n in g.node
        for a in n.attribute
    )
    if not float32 or subgraphs or any(n.op_type in QDQ for n in g.node):
        return proto
    shapes = _shapes(proto)
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    nodes = list(g.node)
    readers: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        for name in dict.fromkeys(n.input):
            readers.setdefault(name, []).append(i)
    outputs = {o.name for o in g.output}
    linear = [_is_linear(n, shapes, consts) for n in nodes]
    # a tensor is folded away when a linear step makes it and one linear step reads it ...
    virtual = {
        n.output[0]
        for i, n in enumerate(nodes)
        if linear[i]
        and n.output[0] not in outputs
        and len(readers.get(n.output[0], [])) == 1
        and linear[readers[n.output[0]][0]]
    }
    # ... but not into a concat that is kept: that would turn a copy into convolutions
    virtual -= {
        x for n in nodes if n.op_type == "Concat" and n.output[0] not in virtual for x in n.input
    }
    if not virtual:
        return proto

    forms: dict[str, tuple[dict[str, np.ndarray], np.ndarray]] = {}

    def form(name: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """`name` as sum(M_s @ s) + b over kept tensors s (channels x channels)."""
        if name in forms:
            return forms[name]
        c = shapes[name][1]
        return {name: np.eye(c)}, np.zeros(c)

    out_nodes, new_consts = [], []
    for i, n in enumerate(nodes):
        if not linear[i] or (n.output[0] not in virtual and not set(n.input) & virtual):
            out_nodes.append(n)  # not linear, or linear on kept tensors only: as it was
            continue
        terms, bias = _compose(n, form, consts, shapes)
        if n.output[0] in virtual:
            forms[n.output[0]] = terms, bias
            continue
        out_nodes += _emit(n.output[0], terms, bias, new_consts)
    used = {name for n in out_nodes for name in n.input}
    folded = onnx.ModelProto()
    folded.CopyFrom(proto)
    del folded.graph.node[:]
    folded.graph.node.extend(out_nodes)
    kept = [t for t in g.initializer if t.name in used]
    del folded.graph.initializer[:]
    folded.graph.initializer.extend(kept + new_consts)
    del folded.graph.value_info[:]
    return folded


def _shapes(proto) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape, with the graph's free dimensions fixed (batch 1, sides
    `_FIXED_SIDE`) so that same-shape adds can be told from broadcasting ones."""
    import onnx
    from onnx import shape_inference

    fixed = onnx.ModelProto()
    fixed.CopyFrom(proto)
    for inp in fixed.graph.input:
        dims = inp.type.tensor_type.shape.dim
        for k, d in enumerate(dims):
            if not d.HasField("dim_value"):
                d.dim_value = 1 if k == 0 else _FIXED_SIDE
    fixed = shape_inference.infer_shapes(fixed)
    g = fixed.graph
    shapes = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = tuple(d.dim_value for d in dims)
    return shapes


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _is_linear(node, shapes: dict, consts: dict) -> bool:
    """A 1x1 convolution (no padding, stride, dilation or groups) with constant weights, a
    channel concat, or an add of two same-shape tensors or of a per-channel constant: on
    4-D tensors of known shape."""
    out = shapes.get(node.output[0]) if node.output else None
    if out is None or len(out) != 4 or len(node.output) != 1:
        return False
    a = _attrs(node)
    if node.op_type == "Conv":
        w = consts.get(node.input[1])
        if w is None or w.ndim != 4 or w.shape[2:] != (1, 1) or node.input[0] not in shapes:
            return False
        if len(node.input) > 2 and node.input[2] and node.input[2] not in consts:
            return False
        return (
            a.get("group", 1) == 1
            and a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
            and not any(a.get("pads", [0]))
            and all(v == 1 for v in a.get("strides", [1]))
            and all(v == 1 for v in a.get("dilations", [1]))
        )
    if node.op_type == "Concat":
        return a.get("axis") in (1, -3) and all(
            len(shapes.get(x, ())) == 4 and x not in consts for x in node.input
        )
    if node.op_type == "Add" and len(node.input) == 2:
        tensors = [x for x in node.input if x not in consts]
        if not tensors or any(shapes.get(x) != out for x in tensors):
            return False
        return all(_channel_bias(consts[x], out[1]) is not None for x in node.input if x in consts)
    return False


def _channel_bias(value: np.ndarray, channels: int) -> np.ndarray | None:
    """A constant added to (N, C, H, W) as one value per channel, or None if it is not."""
    v = np.asarray(value, dtype=np.float64)
    if v.size == 1:
        return np.full(channels, float(v.reshape(())))
    shape = v.shape[-3:] if v.ndim >= 3 else None
    if shape == (channels, 1, 1) and v.size == channels:
        return v.reshape(channels)
    return None


def _compose(node, form, consts: dict, shapes: dict) -> tuple[dict, np.ndarray]:
    """The linear step `node` over the forms of its inputs."""
    c = shapes[node.output[0]][1]
    if node.op_type == "Conv":
        w = consts[node.input[1]].astype(np.float64)[:, :, 0, 0]
        b = consts[node.input[2]] if len(node.input) > 2 and node.input[2] else np.zeros(c)
        terms, bias = form(node.input[0])
        return {s: w @ m for s, m in terms.items()}, w @ bias + np.asarray(b, np.float64)
    if node.op_type == "Concat":
        parts = [form(x) for x in node.input]
        sources = {s: m.shape[1] for terms, _ in parts for s, m in terms.items()}
        terms = {
            s: np.concatenate([t.get(s, np.zeros((len(b), k))) for t, b in parts])
            for s, k in sources.items()
        }
        return terms, np.concatenate([b for _, b in parts])
    terms, bias = {}, np.zeros(c)  # Add
    for x in node.input:
        if x in consts:
            bias = bias + _channel_bias(consts[x], c)
            continue
        t, b = form(x)
        for s, m in t.items():
            terms[s] = terms[s] + m if s in terms else m
        bias = bias + b
    return terms, bias


def _emit(name: str, terms: dict, bias: np.ndarray, new_consts: list):
    """Nodes computing `name` = sum(M_s @ s) + bias: a 1x1 convolution per source (the
    first carries the bias), an identity term added as it is, chained adds."""
    from onnx import helper, numpy_helper

    parts, nodes = [], []
    convs = [(s, m) for s, m in terms.items() if not _is_identity(m) and np.any(m)]
    same = [s for s, m in terms.items() if _is_identity(m)]
    for k, (s, m) in enumerate(convs):
        w = f"{name}/fold{k}.weight"
        new_consts.append(numpy_helper.from_array(m[:, :, None, None].astype(np.float32), w))
        inputs = [s, w]
        if k == 0:
            new_consts.append(numpy_helper.from_array(bias.astype(np.float32), f"{name}/fold.bias"))
            inputs.append(f"{name}/fold.bias")
        out = f"{name}/fold{k}"
        nodes.append(helper.make_node("Conv", inputs, [out], name=out, kernel_shape=[1, 1]))
        parts.append(out)
    if not convs and np.any(bias):  # only identity terms and a bias
        b = f"{name}/fold.bias"
        new_consts.append(numpy_helper.from_array(bias.astype(np.float32)[:, None, None], b))
        parts.append(b)
    parts += same
    if len(parts) == 1:
        nodes.append(helper.make_node("Identity", parts, [name], name=f"{name}/fold"))
        return nodes
    acc = parts[0]
    for k, p in enumerate(parts[1:]):
        out = name if k == len(parts) - 2 else f"{name}/fold.sum{k}"
        nodes.append(helper.make_node("Add", [acc, p], [out], name=f"{name}/fold.add{k}"))
        acc = out
    return nodes


def _is_identity(m: np.ndarray) -> bool:
    return m.shape[0] == m.shape[1] and np.array_equal(m, np.eye(m.shape[0]))
