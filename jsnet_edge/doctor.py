"""`jsnet-edge doctor`: what this machine and install offer jsnet-edge, on one screen.

The first thing to read when a run is slower than expected or a backend is refused:
which runtimes are installed (and which are not, with the extra that brings them), what
the CPU can do (AVX-512, bf16, VNNI, AMX decide which precision is fast), the GPU and
TensorRT, what `backend="auto"` picks here, and what the user cache holds.

Every probe is fenced: a missing or broken optional runtime is reported, never raised, so
the doctor works on the installs that need it most. Runtimes are found without importing
them (a hidden or broken one reads as absent); their versions come from the installed
distributions' metadata.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
from collections import Counter
from collections.abc import Callable

from jsnet_edge._version import __version__
from jsnet_edge.cache import cache_dir
from jsnet_edge.devices import (
    CPU_FEATURES,
    FEATURE_NAMES,
    cpu_flags,
    cpu_model,
    cuda_device_count,
    nvidia_driver,
    usable_cores,
)

# module -> what installs it (None: a core dependency)
RUNTIMES: dict[str, str | None] = {
    "torch": None,
    "onnxruntime": None,
    "openvino": "pip install 'jsnet-edge[openvino]'",
    "tensorrt": "pip install 'jsnet-edge[tensorrt]'",
    "tensorrt_rtx": "pip install 'jsnet-edge[tensorrt-rtx]'",
    "av": "pip install 'jsnet-edge[video]'",
    "ray": "pip install 'jsnet-edge[ray]'",
    "nncf": "pip install 'jsnet-edge[qat]'",
}
# Cache folders (jsnet_edge.cache) and what they hold.
CACHE_PARTS: dict[str, str] = {
    "auto": "auto choices",
    "latency": "latency tables",
    "onnx": "exported graphs",
    "openvino": "compiled models (OpenVINO)",
    "authors": "authors' models",
}


def _fenced(probe: Callable, fallback=None):
    """`probe()`, or `fallback` when it fails in any way (a broken extra, no driver)."""
    try:
        return probe()
    except Exception:  # noqa: BLE001 - a diagnosis must not fail on what it diagnoses
        return fallback


def installed(module: str) -> bool:
    """Importable here (a module hidden as `sys.modules[name] = None` reads as absent)."""
    return _fenced(lambda: importlib.util.find_spec(module) is not None, False)


def runtime_version(module: str) -> str | None:
    """The installed version of `module`'s distribution, None when it is not installed."""
    if not installed(module):
        return None
    dists = _fenced(importlib.metadata.packages_distributions, {}).get(module, [])
    for dist in dists:
        version = _fenced(lambda d=dist: importlib.metadata.version(d))
        if version:
            return version
    return "installed (version unknown)"


def _torch_facts() -> dict:
    import torch

    facts = {"threads": torch.get_num_threads(), "cuda": torch.version.cuda}
    if torch.cuda.is_available():
        facts["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return facts


def _auto_choice() -> dict:
    """What `backend="auto"`, `precision="auto"` pick on the CPU for a model file."""
    backend = "openvino" if installed("openvino") else "onnxruntime"
    precision = "fp32"
    if backend == "openvino":
        from jsnet_edge.runtime.openvino_backend import runs_bf16

        precision = "bf16" if _fenced(runs_bf16, False) else "fp32 (or onnxruntime, measured)"
    return {"backend": backend, "precision": precision}


def _cache() -> dict:
    try:
        root = cache_dir()
    except LookupError:
        return {"path": None, "note": "caching is off (JSNET_EDGE_CACHE is empty)"}
    facts: dict = {"path": str(root), "exists": root.is_dir(), "bytes": 0}
    for part in CACHE_PARTS:
        folder = root / part
        files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
        facts["bytes"] += sum(_fenced(lambda p=p: p.stat().st_size, 0) for p in files)
        facts[part] = len(files)
    auto = root / "auto"
    choices = [
        _fenced(lambda p=p: json.loads(p.read_text()).get("choice"))
        for p in (sorted(auto.glob("*.json")) if auto.is_dir() else [])
    ]
    facts["auto_choices"] = dict(Counter(c for c in choices if c))
    authors = root / "authors"
    facts["authors_models"] = (
        sorted(p.stem for p in authors.glob("*.safetensors")) if authors.is_dir() else []
    )
    return facts


def diagnose() -> dict:
    """Everything the doctor reports, as plain data (`--json` prints it as it is)."""
    flags = cpu_flags()
    torch_facts = _fenced(_torch_facts, {}) if installed("torch") else {}
    gpus = _fenced(cuda_device_count, 0)
    return {
        "jsnet_edge": __version__,
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "executable": sys.executable,
        "platform": platform.platform(),
        "runtimes": {m: runtime_version(m) for m in RUNTIMES},
        "cpu": {
            "model": _fenced(cpu_model, "unknown"),
            "machine": platform.machine(),
            "usable_cores": _fenced(usable_cores, None),
            "features": {k: any(f in flags for f in v) for k, v in CPU_FEATURES.items()}
            if flags
            else None,
        },
        "threads": {
            "torch": torch_facts.get("threads"),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        },
        "gpu": {
            "count": gpus,
            "driver": _fenced(nvidia_driver, "unknown") if gpus else None,
            "names": torch_facts.get("gpus", []),
            "torch_cuda": torch_facts.get("cuda"),
        },
        "tensorrt": {
            "classic": runtime_version("tensorrt"),
            "rtx": runtime_version("tensorrt_rtx"),
        },
        "auto_on_cpu": _fenced(_auto_choice, {}),
        "cache": _fenced(_cache, {}),
    }


def _yes(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "no")


def report(facts: dict) -> str:
    """The one screen `jsnet-edge doctor` prints."""
    lines = [f"jsnet-edge {facts['jsnet_edge']}, Python {facts['python']}, {facts['platform']}"]
    lines.append("runtimes:")
    for module, version in facts["runtimes"].items():
        hint = RUNTIMES[module] or "a core dependency: reinstall jsnet-edge"
        lines.append(f"  {module:<13}{version or f'not installed ({hint})'}")
    cpu = facts["cpu"]
    lines.append(f"cpu:      {cpu['model']} ({cpu['machine']}), {cpu['usable_cores']} usable cores")
    feats = cpu["features"]
    lines.append(
        "features: "
        + (
            ", ".join(f"{FEATURE_NAMES[k]} {_yes(v)}" for k, v in feats.items())
            if feats
            else "unknown (no /proc/cpuinfo)"
        )
    )
    t = facts["threads"]
    lines.append(f"threads:  torch {t['torch']}, OMP_NUM_THREADS {t['OMP_NUM_THREADS'] or 'unset'}")
    g = facts["gpu"]
    if g["count"]:
        names = ", ".join(g["names"]) or "names unknown (torch has no CUDA build)"
        lines.append(
            f"gpu:      {g['count']} ({names}), driver {g['driver']}, torch CUDA {g['torch_cuda']}"
        )
    else:
        lines.append("gpu:      none found (no CUDA driver or GPU): CPU backends only")
    trt = facts["tensorrt"]
    classic, rtx = (trt[k] or "not installed" for k in ("classic", "rtx"))
    lines.append(f"tensorrt: classic {classic}, RTX {rtx} (RTX builds engines without a GPU)")
    auto = facts["auto_on_cpu"]
    if auto:
        lines.append(
            f"auto:     {auto['backend']}, {auto['precision']} (what Restorer(model) runs)"
        )
    c = facts["cache"]
    if not c or c.get("path") is None:
        lines.append(f"cache:    {c.get('note', 'unknown') if c else 'unknown'}")
        return "\n".join(lines)
    lines.append(f"cache:    {c['path']} ({c['bytes'] / 2**20:.1f} MB)")
    for part, what in CACHE_PARTS.items():
        extra = ""
        if part == "auto" and c["auto_choices"]:
            extra = " (" + ", ".join(f"{k} {n}" for k, n in c["auto_choices"].items()) + ")"
        if part == "authors" and c["authors_models"]:
            extra = " (" + ", ".join(c["authors_models"]) + ")"
        lines.append(f"  {what:<28}{c[part]} files{extra}")
    return "\n".join(lines)
