"""The machine: which devices exist, what the CPU is, and torch's thread count.

One home for device checks, so that training, search, timing and the torch backend agree
on what "cuda" means and on how a machine is described in reports and model cards. torch
is imported only inside the functions that need it.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jsnet_edge._started import IMPORTED_AT
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


# What the CPU flags in /proc/cpuinfo mean for these networks.
CPU_FEATURES: dict[str, tuple[str, ...]] = {
    "avx512": ("avx512f",),
    "bf16": ("avx512_bf16", "amx_bf16"),
    "vnni": ("avx512_vnni", "avx_vnni"),
    "amx": ("amx_tile",),
}
FEATURE_NAMES = {"avx512": "AVX-512", "bf16": "bf16", "vnni": "VNNI", "amx": "AMX"}


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_features() -> list[str]:
    """The features of `CPU_FEATURES` this CPU has, by name ("AVX-512", "AMX" ...)."""
    flags = cpu_flags()
    return [FEATURE_NAMES[k] for k, v in CPU_FEATURES.items() if any(f in flags for f in v)]


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
    # The features say what int8 and bf16 can gain (AMX or not): the model name may not.
    features = cpu_features()
    cpu = f"{cpu_model()} ({', '.join(features)})" if features else cpu_model()
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


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
    """Seconds since this program started (Linux), for start-up times that include the
    interpreter and the imports; None where the system does not say.

    The kernel's start time is the process's, and a process keeps it across exec: a shell
    that runs its last command in place (`bash -c 'pip install ... && jsnet-edge video
    ...'`, the README's quick start) hands us its own age, and the first frame read 40 s
    where the command took seconds. Where the process is more than a second older than the
    package's first import (an interpreter starts in tens of milliseconds), the import
    counts."""
    since_import = time.perf_counter() - IMPORTED_AT
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        start = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    age = max(0.0, uptime - start / ticks)
    return since_import if age > since_import + 1.0 else age


def available_memory(root: str | Path = "/") -> int | None:
    """Bytes this process can still take without swapping or being killed: the host's
    MemAvailable, and less where a cgroup (a container, a Slurm job, a systemd unit)
    limits it (v2 memory.max - memory.current; v1 limit_in_bytes - usage_in_bytes).
    None where neither is known. `root` is for tests (a fake /proc and /sys)."""
    root = Path(root)
    found: list[int] = []
    try:
        for line in (root / "proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    left = _cgroup_memory_left(root)
    if left is not None:
        found.append(left)
    return min(found) if found else None


def _cgroup_memory_left(root: Path) -> int | None:
    """Bytes left under this process's cgroup memory limit, None without a limit."""
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    lefts = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        rel = rel.lstrip("/")
        if controllers == "":  # v2: the unified hierarchy
            base, limit_f, usage_f = root / "sys/fs/cgroup", "memory.max", "memory.current"
        elif "memory" in controllers.split(","):  # v1
            base = root / "sys/fs/cgroup/memory"
            limit_f, usage_f = "memory.limit_in_bytes", "memory.usage_in_bytes"
        else:
            continue
        # the limit may be set on this group or any above it (the nearest existing ones)
        folder = base / rel
        while True:
            left = _limit_left(folder, limit_f, usage_f)
            if left is not None:
                lefts.append(left)
            if folder == base or base not in folder.parents:
                break
            folder = folder.parent
    return min(lefts) if lefts else None


def _limit_left(folder: Path, limit_f: str, usage_f: str) -> int | None:
    try:
        limit = (folder / limit_f).read_text().strip()
        if limit == "max" or not limit.isdigit() or int(limit) >= 2**60:
            return None  # no limit (v1 writes a huge number)
        usage = int((folder / usage_f).read_text().strip())
    except (OSError, ValueError):
        return None
    # page cache the kernel drops under pressure counts in the usage, as docker reckons
    cache = 0
    try:
        for line in (folder / "memory.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key in ("inactive_file", "total_inactive_file"):
                cache = int(value)
    except (OSError, ValueError):
        pass
    return max(0, int(limit) - max(0, usage - cache))
