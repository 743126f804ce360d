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


SCOPES = ("convs", "body", "all")
_NOT_OPS = ("nncf_model_const", "nncf_model_input", "nncf_model_output")


def _closure(start, step) -> set[str]:
    seen, todo = set(), list(start)
    while todo:
        n = todo.pop()
        if n.node_name not in seen:
            seen.add(n.node_name)
            todo.extend(step(n))
    return seen


def float_ops(module: nn.Module, example: np.ndarray, scope: str) -> list[str]:
    """NNCF's names of the operations of a JSNet that int8 `scope` leaves in float.

    - "all": none (NNCF's placement for OpenVINO: convolutions, adds, multiplications,
      concatenations, the image paths included).
    - "body": the operations that read or write image values: the head (it reads the
      input), the tail and everything after it (the residual and the output sum), and the
      anchor beside the body (an unshuffled SR network's bilinear upscale). On smooth
      photographs at 44-50 dB one 8-bit step there is as large as the network's own error,
      and fine-tuning hardly learns it away (`sr-x2-rt`: 2.4 dB lost after QAT with them
      in int8, 0.13 dB without).
    - "convs": also every operation of the body but its convolutions, whose inputs and
      weights alone are quantised: the placement NVIDIA's ModelOpt uses for TensorRT, and the
      one that loses least (`sr-x2-rt` after QAT: 0.04 dB; docs/benchmarks.md).
    """
    if scope not in SCOPES:
        raise ValueError(f"int8 scope must be one of {SCOPES}, not {scope!r}")
    if scope == "all":
        return []
    from nncf.torch.function_hook.nncf_graph.nncf_graph_builder import build_nncf_graph

    with eager():
        graph = build_nncf_graph(module, as_tensor(example))
    nodes = list(graph.get_all_nodes())
    ops = {n.node_name for n in nodes if n.node_type not in _NOT_OPS}

    def part(name: str) -> list:  # a network's head or tail, also inside a holder (`_Held`)
        return [
            n for n in nodes if n.node_name.startswith(f"{name}/") or f"/{name}/" in n.node_name
        ]

    head, tail = part("head"), part("tail")
    outputs = [n for n in nodes if n.node_type == "nncf_model_output"]
    names: set[str] = set()
    if head and tail:
        anchor = (
            _closure(outputs, graph.get_previous_nodes)
            - _closure(head, graph.get_next_nodes)
            - _closure(head, graph.get_previous_nodes)
        )
        names = {n.node_name for n in head} | _closure(tail, graph.get_next_nodes) | anchor
    elif scope == "body":
        raise ValueError("int8 scope 'body' needs a network with a head and a tail")
    if scope == "convs":  # a block of the search space has no ends: its convolutions only
        names |= {n.node_name for n in nodes if n.node_type != "conv2d"}
    return sorted(names & ops)


# Where an activation quantiser's range starts (NNCF's range estimators, by our name):
# "mean-minmax" is NNCF's default, the mean over calibration crops of each crop's
# smallest and largest value; "minmax" the smallest and largest over all of them. Neither
# wins everywhere (QAT measures both and starts from the better, `calibration.qat`): on the
# authors' x2 the mean clips bright, saturated photographs (post-training 2.43 dB against
# 0.89 with minmax, 11.4 dB on one photograph); on sr-x2-rt and denoise-rt the wider
# minmax ranges cost precision (0.15 / 0.28 dB against 0.07 / 0.22). docs/benchmarks.md.
RANGES = ("mean-minmax", "minmax")


def _activation_ranges(nncf, ranges: str):
    """One scale per activation tensor, its range started as `ranges` says.

    Per tensor: NNCF may otherwise give a depthwise convolution's input one scale per
    channel (when what precedes it stays in float, as in the `convs` scope), which
    onnxruntime's QLinearConv refuses."""
    from nncf.quantization.advanced_parameters import QuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    estimator = {
        "mean-minmax": RangeEstimatorParametersSet.MEAN_MINMAX,
        "minmax": RangeEstimatorParametersSet.MINMAX,
    }[ranges]
    return nncf.AdvancedQuantizationParameters(
        activations_quantization_params=QuantizationParameters(per_channel=False),
        activations_range_estimator_params=estimator,
    )


def fake_quantized(
    module: nn.Module,
    inputs: list[np.ndarray],
    target: str,
    *,
    scope: str = "all",
    ranges: str = "mean-minmax",
) -> nn.Module:
    """`module` (for a JSNet: mean shift folded, as exported) with NNCF fake quantisers,
    ranges from `inputs` (NCHW, 0..255) as `ranges` (one of `RANGES`) says. For TensorRT
    every activation quantiser is signed (zero point 0). `scope` (`float_ops`) leaves
    operations in float through NNCF's ignored scope."""
    nncf = import_nncf()
    ignored = float_ops(module, inputs[0], scope)
    scope_arg = nncf.IgnoredScope(names=ignored) if ignored else None
    with _quiet(), eager():
        qm = nncf.quantize(
            module,
            nncf.Dataset([as_tensor(x) for x in inputs]),
            subset_size=len(inputs),
            preset=nncf.QuantizationPreset.PERFORMANCE,
            ignored_scope=scope_arg,
            advanced_parameters=_activation_ranges(nncf, ranges),
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


def int8_graph(
    module: nn.Module, shape: tuple[int, ...], target: str = "cpu", scope: str = "convs"
):
    """Any NCHW module (a block of the search space, a whole network) as the int8 Q/DQ
    graph QAT would give it: same placement (`calibrate --qat`'s default scope) and
    formats, ranges from random inputs. For timing (`profile --precision int8`): latency
    depends on where the pairs are, not on the ranges."""
    rng = np.random.default_rng(0)
    inputs = [rng.uniform(0, 255, shape).astype(np.float32) for _ in range(2)]
    qm = fake_quantized(_Held(module.float().cpu().eval()), inputs, target, scope=scope)
    return qdq_export(qm.eval(), shape)
