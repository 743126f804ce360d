"""`build-engine --via torch-tensorrt`: compile the torch module with torch-tensorrt.

Precision follows the module's dtypes (torch-tensorrt's explicit typing, its current
default): fp16 means the module and its input are half. The result is saved as an
ExportedProgram (`.ep`) next to a sidecar; it loads with `torch_tensorrt.load`. Not run in
our CI (no GPU).
"""

from __future__ import annotations

from pathlib import Path

from jsnet_edge.errors import MissingDependencyError, OptionError
from jsnet_edge.models.resolve import resolve_model
from jsnet_edge.outputs import atomic_output, write_json


def compile_torch_tensorrt(model: str, output: Path, *, fp16: bool, profile) -> Path:
    try:
        import torch
        import torch_tensorrt
    except ImportError:
        raise MissingDependencyError(
            "torch-tensorrt is not installed (pip install 'jsnet-edge[torch-tensorrt]', on a "
            "machine with an NVIDIA GPU); or build with --via tensorrt"
        ) from None
    if not torch.cuda.is_available():
        raise OptionError("torch-tensorrt needs a CUDA GPU; none is visible to torch")
    net = resolve_model(model).eval().cuda()
    dtype = torch.float16 if fp16 else torch.float32
    net = net.to(dtype)
    lo, opt, hi = profile.shapes(net.colors)
    spec = torch_tensorrt.Input(min_shape=lo, opt_shape=opt, max_shape=hi, dtype=dtype)
    compiled = torch_tensorrt.compile(
        net, ir="dynamo", arg_inputs=[spec], use_explicit_typing=True, min_block_size=1
    )
    example = torch.rand(opt, device="cuda", dtype=dtype) * 255
    output = output.with_suffix(".ep")
    with atomic_output(output, suffix=".ep") as tmp:
        torch_tensorrt.save(compiled, str(tmp), arg_inputs=[example])
    major, minor = torch.cuda.get_device_capability(0)
    side = {
        "via": "torch-tensorrt",
        "torch_tensorrt": torch_tensorrt.__version__,
        "gpu": torch.cuda.get_device_name(0),
        "compute_capability": f"{major}.{minor}",
        "precision": "fp16" if fp16 else "fp32",
        "task": net.task,
        "genotype": net.genotype.to_dict(),
        "profile": {"min": lo, "opt": opt, "max": hi},
    }
    write_json(output.with_name(output.name + ".json"), side)
    return output
