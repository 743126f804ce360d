"""ONNX export: the one graph every runtime consumes.

Precision is decided here, in the ONNX file (fp32, fp16, or int8 through explicit Q/DQ
nodes written by `jsnet_edge.calibration`), so that what onnxruntime and OpenVINO run and
test on the CPU is exactly what TensorRT compiles. Before export the mean shift is folded
into the first and last convolutions (weight normalisation is already folded in our
modules), and the model's identity (task, genotype, colours, precision) is written into
the ONNX metadata so that an .onnx file is self-describing.
"""

from __future__ import annotations

import copy
import json
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from jsnet_edge._version import __version__
from jsnet_edge.devices import available_memory
from jsnet_edge.errors import OptionError
from jsnet_edge.export.fold import fold_linear
from jsnet_edge.export.graph import INPUT, OPSET, OUTPUT
from jsnet_edge.models.frame_layout import FrameLayout
from jsnet_edge.models.frames import I420Frames
from jsnet_edge.models.network import JSNet
from jsnet_edge.outputs import atomic_output, check_output


class AddConstant(nn.Module):
    """x + c per channel: what remains of the input mean shift after folding its matrix."""

    def __init__(self, c: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("c", c.view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.c


@torch.no_grad()
def fold_mean_shift(model: JSNet) -> JSNet:
    """A copy of `model` without its two 1x1 mean-shift convolutions, same output.

    sub_mean (x -> W x + b) becomes x -> W (x + c) with c = W^-1 b: W folds into the head
    convolution exactly (zero padding commutes with a per-pixel linear map, a bias would
    not), and only the per-channel add of c is left. add_mean (y -> W y + b) after the last
    tail convolution folds into it completely.
    """
    m = copy.deepcopy(model).float().cpu().eval()
    ws, bs = m.sub_mean.weight[:, :, 0, 0].double(), m.sub_mean.bias.double()
    c = torch.linalg.solve(ws, bs)
    # With unshuffle s the head sees colour c in channels c*s*s .. c*s*s + s*s - 1 (of
    # each frame it reads: a recurrent head reads the previous frame's after them).
    o, cin, kh, kw = m.head.weight.shape
    n = 2 if m.genotype.recurrent else 1
    head = m.head.weight.double().view(o, n, m.colors, cin // (n * m.colors), kh, kw)
    head = torch.einsum("ofiskl,ij->ofjskl", head, ws).reshape(o, cin, kh, kw)
    m.head.weight.copy_(head.float())
    m.sub_mean = AddConstant(c.float())
    if m.scale > 1 and not m.anchored:  # anchored (unshuffled) SR networks have no add_mean
        last = m.tail[-1]
        wa, ba = m.add_mean.weight[:, :, 0, 0].double(), m.add_mean.bias.double()
        last.weight.copy_(torch.einsum("ij,jokl->iokl", wa, last.weight.double()).float())
        last.bias.copy_((wa @ last.bias.double() + ba).float())
        m.add_mean = nn.Identity()
    return m


def model_metadata(
    model: JSNet, precision: str, layout: FrameLayout | None = None
) -> dict[str, str]:
    frames = {} if layout is None else {"frames": layout.key}
    return {
        **frames,
        "jsnet_edge.format": "1",
        "jsnet_edge.version": __version__,
        "task": model.task,
        "colors": str(model.colors),
        "scale": str(model.scale),
        "min_size": str(model.min_size),
        "genotype": model.genotype.to_json(),
        "precision": precision,
        "provenance": json.dumps(model.provenance or {}),
    }


def save_onnx(proto, path: str | Path, *, overwrite: bool = True) -> Path:
    """Write an ONNX model through the output guard (atomic; no-replace without overwrite)."""
    import onnx

    path = check_output(path, overwrite=overwrite)
    with atomic_output(path, overwrite=overwrite) as tmp:
        onnx.save(proto, str(tmp))
    return path


def to_fp16(proto):
    """An fp16 copy of an fp32 graph, inputs and outputs included (fp16 end to end, as
    strongly typed TensorRT expects). Resize scales stay fp32, as ONNX requires: the
    converter inserts their casts after the nodes that use them (onnxruntime 1.32), so the
    graph is sorted topologically again, as ONNX requires too."""
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    half = convert_float_to_float16(proto, keep_io_types=False, disable_shape_infer=False)
    OnnxModel.graph_topological_sort(half.graph, is_deterministic=True)
    return half


def trace_onnx(module: nn.Module, shape: tuple[int, ...], *, dynamic: bool = True):
    """`module` (NCHW -> NCHW, fp32) traced to an ONNX ModelProto: the one place jsnet-edge
    calls the exporter, for whole networks and for the blocks the latency table times, so
    a block runs in its profiling session as it runs inside the deployed graph (same names,
    opset and dynamic batch/height/width)."""
    import onnx

    dummy = torch.rand(*shape) * 255
    axes = (
        {
            INPUT: {0: "batch", 2: "height", 3: "width"},
            OUTPUT: {0: "batch", 2: "out_height", 3: "out_width"},
        }
        if dynamic
        else None
    )
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module.float().cpu().eval(),
                (dummy,),
                str(raw),
                input_names=[INPUT],
                output_names=[OUTPUT],
                opset_version=OPSET,
                dynamo=False,
                dynamic_axes=axes,
                do_constant_folding=True,
            )
        return onnx.load(str(raw))


def check_file_precision(precision: str) -> None:
    if precision not in ("fp32", "fp16"):
        raise OptionError(
            f"export writes fp32 or fp16 ONNX, not {precision!r}; int8 comes from "
            "`jsnet-edge calibrate`"
        )


def export_module(
    module: nn.Module, shape: tuple[int, ...], path: str | Path, precision: str = "fp32"
) -> Path:
    """Any NCHW -> NCHW module (a block of the search space) as a dynamic-shape ONNX file."""
    check_file_precision(precision)
    proto = trace_onnx(module, shape)
    return save_onnx(to_fp16(proto) if precision == "fp16" else proto, path)


def _check_trace_memory(model: JSNet, w: int, h: int) -> None:
    """Tracing runs the network once at the graph's size: refuse, in one line, a size whose
    activations (about six feature maps of the cell width at once) cannot fit."""
    s = model.genotype.unshuffle
    need = 6 * h * w * model.genotype.features * 4 // (s * s) + h * w * 3 * 4 * model.scale**2
    free = available_memory()
    if free is not None and need > free:
        raise OptionError(
            f"tracing a static {w}x{h} graph needs about {need / 2**30:,.1f} GB of memory and "
            f"{free / 2**30:.1f} GB are available; export a dynamic graph (no --input-size) "
            "or a smaller size"
        )


def export_onnx(
    model: JSNet,
    path: str | Path,
    *,
    precision: str = "fp32",
    input_size: tuple[int, int] | None = None,
    overwrite: bool = True,
    check: bool = True,
    frames: FrameLayout | None = None,
    fold: bool = True,
) -> Path:
    """Write `model` as ONNX (opset 17), mean shift folded, identity in the metadata.

    Args:
        precision: fp32, or fp16 (weights, activations and I/O in fp16).
        input_size: (W, H) for a static graph; by default batch, height and width are
            dynamic.
        check: run `onnx.checker` on the result.
        frames: a static graph on video frames in their own I420 layout, of that size
            and colour matrix (`jsnet_edge.models.frames`), instead of RGB.
        fold: fold the chains of 1x1 convolutions, concats and adds into the convolutions
            that read them (`jsnet_edge.export.fold`: the same function in fewer passes over
            memory). False keeps one graph node per module step, for tools that map nodes
            back to modules (calibration).
    """
    import onnx

    check_file_precision(precision)
    path = check_output(path, overwrite=overwrite)
    if frames is not None:
        input_size = (frames.width, frames.height)
    w, h = input_size or (64, 48)
    h, w = max(h, model.min_size), max(w, model.min_size)
    m = model.size_multiple
    if h % m or w % m:
        raise OptionError(
            f"--input-size must be a multiple of {m} for this network "
            f"(its body runs unshuffled by {m}), got {w}x{h}"
        )
    _check_trace_memory(model, w, h)
    if frames is None:
        proto = trace_onnx(fold_mean_shift(model), (1, model.colors, h, w), dynamic=not input_size)
    else:
        # the mean shift and the colour matrices fold into the I420 head and tail
        i420 = I420Frames(model, frames)
        proto = trace_onnx(i420, i420.shape, dynamic=False)
    if fold:
        proto = fold_linear(proto)
    if precision == "fp16":
        proto = to_fp16(proto)
    del proto.metadata_props[:]
    for k, v in model_metadata(model, precision, frames).items():
        proto.metadata_props.add(key=k, value=v)
    proto.producer_name = "jsnet-edge"
    proto.producer_version = __version__
    if check:
        onnx.checker.check_model(proto)
    return save_onnx(proto, path, overwrite=overwrite)
