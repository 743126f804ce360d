"""The machine: which devices exist, what the CPU is, and torch's thread count.

One home for device checks, so that training, search, timing and the torch backend agree
on what "cuda" means and on how a machine is described in reports and model cards. torch
is imported only inside the functions that need it.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jsnet_edge.errors import MissingDependencyError, OptionError


def check_torch_device(device: str):
    """`torch.device(device)` if torch can use it here, else a clear OptionError."""
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise OptionError(f"unknown device {device!r}; use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise OptionError("device cuda was asked for, but torch sees no CUDA GPU; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise OptionError(f"device {device!r} is not supported; use cpu or cuda")
    return dev


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def nvidia_driver() -> str:
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        return "unknown"
    for word in text.split():
        if word.count(".") >= 1 and word.replace(".", "").isdigit():
            return word
    return "unknown"


def gpu_description() -> dict:
    """GPU name, driver, compute capability and CUDA version, as torch sees them."""
    import torch

    if not torch.cuda.is_available():
        raise OptionError("--device cuda was asked for, but torch sees no CUDA GPU")
    major, minor = torch.cuda.get_device_capability(0)
    return {
        "gpu": torch.cuda.get_device_name(0),
        "driver": nvidia_driver(),
        "compute_capability": f"{major}.{minor}",
        "cuda": torch.version.cuda,
    }


def machine_description(device: str) -> str:
    """One line for reports and model cards: the GPU, or the CPU and torch's threads."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"{cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}"


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with `n` torch threads (None: unchanged), restoring the setting after:
    library code must not change a process-wide setting behind its caller's back."""
    if not n:
        yield
        return
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def cudart():
    """cuda-python's runtime module (as NVIDIA's current TensorRT samples use; not pycuda)."""
    try:
        from cuda.bindings import runtime  # cuda-python >= 12.6.1
    except ImportError:
        try:
            from cuda import cudart as runtime  # older 12.x
        except ImportError:
            raise MissingDependencyError(
                "running a TensorRT engine without torch's CUDA build needs cuda-python: "
                "pip install cuda-python"
            ) from None
    return runtime


def gpu_identity() -> tuple[str, str]:
    """(GPU name, compute capability 'major.minor') through torch or cuda-python."""
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            return torch.cuda.get_device_name(0), f"{major}.{minor}"
    except ImportError:
        pass
    rt = cudart()
    err, prop = rt.cudaGetDeviceProperties(0)
    if int(err) != 0:
        raise OptionError("no CUDA GPU is usable here (cudaGetDeviceProperties failed)")
    name = prop.name.decode() if isinstance(prop.name, bytes) else str(prop.name)
    return name.rstrip("\x00"), f"{prop.major}.{prop.minor}"


def cuda_device_count() -> int:
    """NVIDIA GPUs the driver reports, 0 without a driver or GPU: asked through the CUDA
    driver API itself (ctypes), so that nothing (TensorRT, torch) is initialised first.
    TensorRT's runtimes crash or fail in unclear ways when asked to load an engine where
    no GPU is usable; this lets jsnet-edge say so in one line first."""
    import ctypes
    import ctypes.util

    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll", ctypes.util.find_library("cuda")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        return 0
    if lib.cuInit(0) != 0:
        return 0
    count = ctypes.c_int(0)
    return count.value if lib.cuDeviceGetCount(ctypes.byref(count)) == 0 else 0


def process_age() -> float | None:
    """Seconds since this process started (Linux), for start-up times that include the
    interpreter and the imports; None where the system does not say."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        start = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return max(0.0, uptime - start / ticks)
