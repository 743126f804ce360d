"""NNCF fake quantisers on our networks and blocks, and their export as Q/DQ ONNX.

One place knows how NNCF is driven (placement preset, TensorRT signedness, export mode,
eager execution), for `calibrate --qat` and for int8 latency tables alike.
"""

from __future__ import annotations

import contextlib
import io
import logging

import numpy as np
import torch
from torch import nn

from jsnet_edge.errors import MissingDependencyError
from jsnet_edge.export.onnx import trace_onnx
from jsnet_edge.models.network import JSNet


def import_nncf():
    """NNCF, imported lazily. Its fake quantisers would first compile a C++ extension (a
    compiler, and a 60 s stall or timeout on small machines); its reference functions are
    plain torch operations, as fast at these sizes, so we use them."""
    try:
        import nncf
        from nncf.torch.quantization import extensions, reference
    except ImportError:
        raise MissingDependencyError(
            "int8 training and timing need NNCF: pip install 'jsnet-edge[qat]'"
        ) from None
    loader = getattr(extensions, "QuantizedFunctionsCPU", None)
    if loader is not None and getattr(loader, "_loaded_namespace", "absent") is None:
        loader._loaded_namespace = reference.ReferenceQuantizedFunctions
    nncf.set_log_level(logging.ERROR)
    return nncf


@contextlib.contextmanager
def _quiet():
    """NNCF draws progress bars on stdout, which belongs to the command's result."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def eager():
    """NNCF's reference quantisers are `torch.compile`d; with a new shape or a Parameter
    for an input they recompile up to dynamo's limit (minutes on two cores, and warnings),
    for no gain at these sizes. Eager it is."""
    set_stance = getattr(torch.compiler, "set_stance", None)  # torch >= 2.6
    return set_stance("force_eager") if set_stance else contextlib.nullcontext()


def as_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def image_ends(module: nn.Module, example: np.ndarray) -> list[str]:
    """NNCF's names of the operations that read or write image values in a JSNet: the
    head (it reads the input), the tail and everything after it (the predicted residual
    and the output sum), and the anchor beside the body (the bilinear upscale of an
    unshuffled SR network). On smooth photographs at 44-50 dB one 8-bit step on these
    paths is as large as the network's own error, and fine-tuning hardly learns it away
    (`sr-x2-rt` in int8: 2.8 dB lost with them quantised, 0.2 dB without, before any
    training: docs/benchmarks.md)."""
    from nncf.torch.function_hook.nncf_graph.nncf_graph_builder import build_nncf_graph

    with eager():
        graph = build_nncf_graph(module, as_tensor(example))
    nodes = list(graph.topological_sort())

    def closure(start, step) -> set[str]:
        seen, todo = set(), list(start)
        while todo:
            n = todo.pop()
            if n.node_name not in seen:
                seen.add(n.node_name)
                todo.extend(step(n))
        return seen

    head = [n for n in nodes if n.node_name.startswith("head/")]
    tail = [n for n in nodes if n.node_name.startswith("tail/")]
    outputs = [n for n in nodes if n.node_type == "nncf_model_output"]
    if not head or not tail:
        raise ValueError("image_ends needs a network with a head and a tail")
    after_head = closure(head, graph.get_next_nodes)
    before_head = closure(head, graph.get_previous_nodes)
    before_out = closure(outputs, graph.get_previous_nodes)
    after_tail = closure(tail, graph.get_next_nodes)
    anchor = before_out - after_head - before_head
    names = {n.node_name for n in head} | after_tail | anchor
    ops = {
        n.node_name
        for n in nodes
        if n.node_type not in ("nncf_model_const", "nncf_model_input", "nncf_model_output")
    }
    return sorted(names & ops)


def fake_quantized(
    module: nn.Module, inputs: list[np.ndarray], target: str, *, float_ends: bool = False
) -> nn.Module:
    """`module` (for a JSNet: mean shift folded, as exported) with NNCF fake quantisers,
    ranges from `inputs` (NCHW, 0..255). For TensorRT every activation quantiser is signed
    (zero point 0). `float_ends`: the layers that read or write image values
    (`image_ends`) stay in float, through NNCF's ignored scope."""
    nncf = import_nncf()
    scope = None
    if float_ends:
        scope = nncf.IgnoredScope(names=image_ends(module, inputs[0]))
    with _quiet(), eager():
        qm = nncf.quantize(
            module,
            nncf.Dataset([as_tensor(x) for x in inputs]),
            subset_size=len(inputs),
            preset=nncf.QuantizationPreset.PERFORMANCE,
            ignored_scope=scope,
        )
    if target == "tensorrt":
        from nncf.torch.quantization.layers import SymmetricQuantizer

        for q in qm.modules():
            if isinstance(q, SymmetricQuantizer) and not q.signed:
                q.signed = True
    return qm


def from_config(folded: JSNet, config: dict) -> nn.Module:
    nncf = import_nncf()
    return nncf.torch.load_from_config(folded, config)


def qdq_export(qm: nn.Module, shape: tuple[int, ...], *, dynamic: bool = True):
    """A fake-quantised module as ONNX with QuantizeLinear/DequantizeLinear pairs."""
    from nncf.torch.quantization.layers import BaseQuantizer, QuantizerExportMode

    for q in qm.modules():
        if isinstance(q, BaseQuantizer):
            q.set_export_mode(QuantizerExportMode.ONNX_QUANTIZE_DEQUANTIZE_PAIRS)
    with torch.no_grad(), eager():
        return trace_onnx(qm, shape, dynamic=dynamic)


def qdq_proto(qm: nn.Module, model: JSNet):
    """The fake-quantised network `model` as a dynamic-shape Q/DQ graph."""
    m = model.size_multiple
    side = -(-max(64, model.min_size) // m) * m
    return qdq_export(qm, (1, model.colors, side, side))


class _Held(nn.Module):
    """NNCF adds its hooks as a child module, which an `nn.Sequential` would then run as a
    layer: blocks are quantised inside this holder."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


def int8_graph(module: nn.Module, shape: tuple[int, ...], target: str = "cpu"):
    """Any NCHW module (a block of the search space, a whole network) as the int8 Q/DQ
    graph QAT would give it: same placement and formats, ranges from random inputs. For
    timing (`profile --precision int8`): latency depends on where the pairs are, not on
    the ranges."""
    rng = np.random.default_rng(0)
    inputs = [rng.uniform(0, 255, shape).astype(np.float32) for _ in range(2)]
    qm = fake_quantized(_Held(module.float().cpu().eval()), inputs, target)
    return qdq_export(qm.eval(), shape)
