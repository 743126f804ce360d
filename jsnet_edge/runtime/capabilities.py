"""What each runtime can run, where: the one table that the factory, the Restorer, the
latency profiler and `bench` consult."""

from __future__ import annotations

import importlib.util

from jsnet_edge.errors import OptionError

BACKENDS = ("torch", "onnxruntime", "openvino", "tensorrt")
DEVICES = ("cpu", "cuda")

# backend -> device -> precisions. int8 always comes from a calibrated ONNX file.
CAPABILITIES: dict[str, dict[str, tuple[str, ...]]] = {
    "torch": {"cpu": ("fp32", "bf16"), "cuda": ("fp32", "bf16", "fp16")},
    "onnxruntime": {"cpu": ("fp32", "fp16", "int8"), "cuda": ("fp32", "fp16", "int8")},
    "openvino": {"cpu": ("fp32", "bf16", "int8")},
    "tensorrt": {"cuda": ("fp32", "fp16", "int8")},
}


def device_type(device: str) -> str:
    """'cuda:1' -> 'cuda'."""
    return device.split(":", 1)[0]


def check_capability(backend: str, device: str, precision: str) -> None:
    """Refuse, with the reason and what to use instead, a combination that cannot run."""
    if backend not in CAPABILITIES:
        raise OptionError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    dev = device_type(device)
    if dev not in DEVICES:
        raise OptionError(f"unknown device {device!r}; choose cpu or cuda")
    devices = CAPABILITIES[backend]
    if dev not in devices:
        raise OptionError(f"the {backend} backend runs on {' or '.join(devices)}, not {dev}")
    if precision in devices[dev]:
        return
    if backend == "torch" and precision == "fp16":
        raise OptionError(
            "fp16 needs --device cuda with the torch backend; on the CPU use bf16 (or the "
            "openvino backend)"
        )
    if backend == "torch" and precision == "int8":
        raise OptionError(
            "int8 needs a calibrated ONNX file: run `jsnet-edge calibrate MODEL -o "
            "model_int8.onnx` and pass that file as the model"
        )
    if backend == "onnxruntime" and precision == "bf16":
        raise OptionError("onnxruntime has no bf16 CPU path; use the openvino or torch backend")
    raise OptionError(
        f"the {backend} backend runs {', '.join(devices[dev])} on {dev}, not {precision}"
    )


def onnx_file_precision(backend: str, precision: str) -> str:
    """The precision of the ONNX file a runtime needs for `precision`: fp16 graphs for
    onnxruntime and TensorRT fp16; fp32 otherwise (OpenVINO's bf16 is a runtime setting
    applied to the fp32 graph)."""
    return "fp16" if precision == "fp16" and backend in ("onnxruntime", "tensorrt") else "fp32"


def has_module(name: str) -> bool:
    """Whether an optional runtime is installed (without importing it)."""
    return importlib.util.find_spec(name) is not None
