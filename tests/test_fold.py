"""Folding the linear 1x1 parts of exported graphs (`jsnet_edge.export.fold`): the same
function as the module-faithful graph, in fewer steps, and nothing folded that is not
linear (padded kernels, broadcasting adds, quantised graphs)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from jsnet_edge.export.fold import fold_linear
from jsnet_edge.export.onnx import export_onnx
from jsnet_edge.export.verify import run_reference
from jsnet_edge.models import load_model
from jsnet_edge.models.frame_layout import FrameLayout
from jsnet_edge.zoo import ZOO


def concats_read_by_1x1(proto) -> int:
    convs = {
        n.input[0]
        for n in proto.graph.node
        if n.op_type == "Conv"
        and any(a.name == "kernel_shape" and list(a.ints) == [1, 1] for a in n.attribute)
    }
    return sum(n.op_type == "Concat" and n.output[0] in convs for n in proto.graph.node)


@pytest.mark.parametrize("name,frames", [("denoise-rt", None), ("denoise-hd", (128, 96))])
def test_folded_graph_computes_the_same_in_fewer_steps(name, frames, photo, tmp_path):
    net = load_model(ZOO[name].path)
    layout = FrameLayout(*frames, "bt601") if frames else None
    plain = export_onnx(net, tmp_path / "plain.onnx", frames=layout, fold=False)
    folded = export_onnx(net, tmp_path / "folded.onnx", frames=layout)
    p, f = onnx.load(str(plain)), onnx.load(str(folded))
    assert concats_read_by_1x1(p) > 0 and concats_read_by_1x1(f) == 0
    assert len(f.graph.node) < len(p.graph.node)
    if frames:  # I420 frames: Y rows then U and V rows, the photo's green as luma samples
        w, h = frames
        x = photo[: 3 * h // 2, :w, 1].astype(np.float32)[None, None]
        a, b = run_reference(plain, x), run_reference(folded, x)
        # outputs are rounded to whole samples: rounding may tip a few by one
        assert np.abs(a - b).max() <= 1 and np.mean(a != b) < 1e-3
    else:
        x = np.ascontiguousarray(photo[:72, :96].transpose(2, 0, 1)[None], dtype=np.float32)
        assert np.abs(run_reference(plain, x) - run_reference(folded, x)).max() <= 1e-3
    again = fold_linear(f)  # folding is done once: nothing left to fold
    assert [n.op_type for n in again.graph.node] == [n.op_type for n in f.graph.node]


def test_quantised_graphs_are_left_as_they_are():
    proto = onnx.load(str(ZOO["jpeg"].path.with_name("jpeg-int8.onnx")))
    assert any(n.op_type == "QuantizeLinear" for n in proto.graph.node)
    assert fold_linear(proto) is proto


def _graph(nodes, weights):
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4, "h", "w"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4, "h", "w"])
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()]
    g = helper.make_graph(nodes, "g", [x], [y], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_only_linear_steps_fold(tmp_path):
    """A 1x1 conv, then an add of a per-channel tensor (broadcast: not linear in the
    frame), a padded 3x3 conv, and a 1x1 conv over a concat and an add of the input: only
    the last part folds, and the result is the same."""
    rng = np.random.default_rng(0)
    w = {
        "a": rng.normal(size=(4, 4, 1, 1)),
        "ab": rng.normal(size=4),
        "k": rng.normal(size=(4, 4, 3, 3)),
        "c": rng.normal(size=(6, 8, 1, 1)),
        "d": rng.normal(size=(4, 6, 1, 1)),
        "db": rng.normal(size=4),
    }
    nodes = [
        helper.make_node("Conv", ["input", "a", "ab"], ["t1"], kernel_shape=[1, 1]),
        helper.make_node("GlobalAveragePool", ["input"], ["m"]),
        helper.make_node("Add", ["t1", "m"], ["t2"]),  # broadcasting: kept
        helper.make_node("Conv", ["t2", "k"], ["t3"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["t3", "input"], ["t4"], axis=1),
        helper.make_node("Conv", ["t4", "c"], ["t5"], kernel_shape=[1, 1]),
        helper.make_node("Conv", ["t5", "d", "db"], ["t6"], kernel_shape=[1, 1]),
        helper.make_node("Add", ["t6", "input"], ["output"]),
    ]
    proto = _graph(nodes, w)
    onnx.checker.check_model(proto)
    folded = fold_linear(proto)
    onnx.checker.check_model(folded)
    ops = [n.op_type for n in folded.graph.node]
    assert ops.count("Concat") == 0 and "GlobalAveragePool" in ops
    kept = {n.output[0] for n in folded.graph.node}
    assert {"t1", "t2", "t3"} <= kept and not {"t4", "t5", "t6"} & kept
    x = rng.normal(size=(1, 4, 10, 12)).astype(np.float32)
    onnx.save(proto, tmp_path / "plain.onnx")
    onnx.save(folded, tmp_path / "folded.onnx")
    a, b = run_reference(tmp_path / "plain.onnx", x), run_reference(tmp_path / "folded.onnx", x)
    assert np.abs(a - b).max() <= 1e-4
