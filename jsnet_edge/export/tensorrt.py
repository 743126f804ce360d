"""Building TensorRT engines from our ONNX files, and the JSON sidecar that describes them.

TensorRT 11 removed the FP16/INT8 builder flags and the INT8 calibrators: networks are
strongly typed and take their precision from the graph (fp16 tensors, or explicit Q/DQ
nodes for int8). TensorRT 10 (JetPack 6) accepts the same graphs when the network is
created STRONGLY_TYPED. So the builder here only compiles: precision was decided when the
ONNX was exported (`export --precision fp16`) or calibrated (`calibrate --target tensorrt`,
symmetric int8 as TensorRT requires), and those same files are what the CPU runtimes run
and the tests check.

Two builders drive the same code: classic TensorRT 10.x/11.x (`tensorrt`, on the GPU
it builds for) and TensorRT for RTX (`tensorrt_rtx`, ahead of time without a GPU, for the
RTX compute capabilities named). CI builds real engines with TensorRT for RTX; running an
engine needs an NVIDIA GPU, which CI does not have (see docs/benchmarks.md).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsnet_edge.devices import cuda_device_count, gpu_identity
from jsnet_edge.errors import MissingDependencyError, ModelError, OptionError
from jsnet_edge.export.graph import onnx_identity, read_onnx_metadata
from jsnet_edge.outputs import check_output, write_bytes, write_json

TRT_MISSING = (
    "TensorRT is not installed. To build engines for RTX GPUs ahead of time, on any machine "
    "(no GPU needed): pip install 'jsnet-edge[tensorrt-rtx]'. On a machine with an NVIDIA GPU "
    "(Jetson, data-centre GPUs): pip install 'jsnet-edge[tensorrt]'. On the CPU use the "
    "openvino backend (fp32, bf16, int8) or onnxruntime: `jsnet-edge bench MODEL` compares them."
)
NO_GPU_FOR_CLASSIC = (
    "TensorRT {version} builds engines on the GPU they are for, and no NVIDIA GPU is usable "
    "here; build on the target machine, or install TensorRT for RTX (pip install "
    "'jsnet-edge[tensorrt-rtx]'), which builds for RTX GPUs ahead of time on any machine"
)
# What TensorRT for RTX builds for when no compute capability is named (its documentation:
# "8.0, 8.6, 8.9, 12.0 and later"); kernels are specialised on the GPU when the engine loads.
RTX_DEFAULT_CAPABILITIES = ("8.0", "8.6", "8.9", "12.0")


@dataclass(frozen=True)
class TensorRT:
    """The TensorRT that is installed: classic TensorRT 10.x/11.x (module `tensorrt`, builds
    on the GPU it builds for) or TensorRT for RTX (module `tensorrt_rtx`, builds ahead of
    time without a GPU for the compute capabilities it is given)."""

    module: Any
    name: str  # "tensorrt" or "tensorrt-rtx"

    @property
    def version(self) -> str:
        return str(self.module.__version__)

    @property
    def rtx(self) -> bool:
        return self.name == "tensorrt-rtx"

    def describe(self) -> str:
        return f"{self.name} {self.version}"


def import_tensorrt() -> TensorRT:
    """Classic TensorRT where it imports, else TensorRT for RTX."""
    try:
        import tensorrt

        return TensorRT(tensorrt, "tensorrt")
    except Exception:  # noqa: BLE001 - ImportError, or PyPI's stub without its libraries
        pass
    try:
        import tensorrt_rtx

        return TensorRT(tensorrt_rtx, "tensorrt-rtx")
    except Exception:  # noqa: BLE001
        raise MissingDependencyError(TRT_MISSING) from None


def has_tensorrt() -> bool:
    """Whether a TensorRT builder is installed and imports."""
    try:
        import_tensorrt()
    except MissingDependencyError:
        return False
    return True


def parse_compute_capabilities(text: str | None) -> tuple[str, ...] | None:
    """'8.6,8.9,12.0' -> ('8.6', '8.9', '12.0'); None stays None (the builder's own set)."""
    if text is None:
        return None
    caps = tuple(c.strip().lower() for c in str(text).split(",") if c.strip())
    for c in caps:
        if c != "current" and not re.fullmatch(r"\d{1,2}\.\d", c):
            raise OptionError(
                f"compute capabilities are written like 8.6,8.9,12.0 (or current), got {text!r}"
            )
    if not caps:
        raise OptionError("give at least one compute capability, e.g. 8.6,8.9,12.0")
    return caps


def _capability_enum(trt, cap: str):
    name = "CURRENT" if cap == "current" else "SM" + cap.replace(".", "")
    value = getattr(trt.ComputeCapability, name, None)
    if value is None:
        known = [
            f"{n[2:-1]}.{n[-1]}" for n in trt.ComputeCapability.__members__ if n.startswith("SM")
        ]
        raise OptionError(
            f"TensorRT for RTX cannot build for compute capability {cap}; it builds for "
            f"{', '.join(known)} (RTX GPUs; data-centre GPUs use TensorRT 10/11)"
        )
    return value


def sidecar_path(engine: Path) -> Path:
    return engine.with_name(engine.name + ".json")


def read_sidecar(engine: Path) -> dict:
    engine = Path(engine)
    if not engine.is_file():
        raise ModelError(f"engine {engine} does not exist")
    side = sidecar_path(engine)
    if not side.is_file():
        raise ModelError(
            f"{engine} has no sidecar {side.name}: it was not built by jsnet-edge "
            "build-engine (rebuild it, the sidecar says which GPU and TensorRT it "
            "is for)"
        )
    try:
        data = json.loads(side.read_text())
        for key in (
            "builder",
            "builder_version",
            "compute_capabilities",
            "precision",
            "task",
            "scale",
            "colors",
            "min_size",
            "genotype",
            "profile",
            "onnx_sha256",
            "engine_sha256",
        ):
            data[key]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ModelError(f"engine sidecar {side} is damaged ({e}); rebuild the engine") from None
    return data


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Profile:
    """Optimisation profile of the input, as (W, H) sizes; batch min 1."""

    min: tuple[int, int] = (64, 64)
    opt: tuple[int, int] = (640, 360)
    max: tuple[int, int] = (1920, 1088)
    max_batch: int = 1
    opt_batch: int = 1

    def __post_init__(self) -> None:
        for a, b in ((self.min, self.opt), (self.opt, self.max)):
            if a[0] > b[0] or a[1] > b[1]:
                raise OptionError(
                    f"engine profile needs min <= opt <= max, got min "
                    f"{self.min}, opt {self.opt}, max {self.max}"
                )
        if not 1 <= self.opt_batch <= self.max_batch:
            raise OptionError("engine profile needs 1 <= opt batch <= max batch")

    def shapes(self, colors: int) -> tuple[tuple[int, ...], ...]:
        return (
            (1, colors, self.min[1], self.min[0]),
            (self.opt_batch, colors, self.opt[1], self.opt[0]),
            (self.max_batch, colors, self.max[1], self.max[0]),
        )


def capturing_logger(trt):
    """A TensorRT logger that keeps warnings and errors, so that failures (which TensorRT
    reports by returning None) can say why in one line. It must outlive what it logs for."""

    class Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.messages: list[str] = []

        def log(self, severity, msg) -> None:
            if severity <= trt.ILogger.Severity.WARNING:
                self.messages.append(str(msg))

    return Logger()


def build_plan(
    onnx_path: Path,
    shapes: tuple[tuple[int, ...], ...],
    *,
    tensorrt: TensorRT | None = None,
    compute_capabilities: tuple[str, ...] | None = None,
    workspace_gb: float | None = None,
    timing_cache: Path | None = None,
) -> tuple[bytes, Any]:
    """Parse an ONNX file (fp32, fp16 or Q/DQ int8) into a strongly typed network and build
    it for one optimisation profile (min, opt, max input shapes): the one place jsnet-edge
    makes TensorRT networks. Returns the serialised engine and the builder config.

    TensorRT for RTX builds without a GPU, for `compute_capabilities` (default: its own
    set; "current" is the GPU here). Classic TensorRT builds for the GPU here, and only
    where there is one; it alone keeps a timing cache (deprecated in TensorRT for RTX,
    whose kernels are compiled when the engine loads). No workspace limit unless asked:
    a 2 GB limit made the paper-size network fail at 1920x1088.
    """
    t = tensorrt or import_tensorrt()
    trt = t.module
    if not t.rtx:
        if compute_capabilities:
            raise OptionError(
                f"--compute-capability applies to TensorRT for RTX; {t.describe()} builds for "
                "the GPU it runs on"
            )
        if cuda_device_count() == 0:  # classic TensorRT fails obscurely without one
            raise OptionError(NO_GPU_FOR_CLASSIC.format(version=t.version))
    logger = capturing_logger(trt)
    builder = trt.Builder(logger)
    # Strongly typed: required on TensorRT 10 for graph-decided precision, implied on 11/RTX.
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    network = builder.create_network(0 if flag is None else 1 << int(flag))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"{t.describe()} cannot parse {onnx_path}: {errors[:300]}")
    config = builder.create_builder_config()
    if workspace_gb is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(network.get_input(0).name, *shapes)
    config.add_optimization_profile(opt_profile)
    if t.rtx and compute_capabilities:
        config.num_compute_capabilities = len(compute_capabilities)  # slots before values
        for i, cap in enumerate(compute_capabilities):
            if not config.set_compute_capability(_capability_enum(trt, cap), i):
                raise OptionError(
                    f"{t.describe()} refused compute capability {cap} in "
                    f"{','.join(compute_capabilities)} ('current' must be alone, and needs a GPU)"
                )
    if timing_cache is not None and not t.rtx:
        data = timing_cache.read_bytes() if timing_cache.is_file() else b""
        config.set_timing_cache(config.create_timing_cache(data), ignore_mismatch=False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ModelError(
            f"{t.describe()} failed to build the engine: " + "; ".join(logger.messages[-3:])[:400]
        )
    return bytes(plan), config


@dataclass(frozen=True)
class BuiltEngine:
    path: Path
    sidecar: dict
    seconds: float

    @property
    def size_mb(self) -> float:
        return self.path.stat().st_size / 2**20

    def describe(self) -> str:
        side = self.sidecar
        caps = "/".join(side["compute_capabilities"])
        where = f" for {side['gpu']}" if side.get("gpu") else ""
        return (
            f"{side['builder']} {side['builder_version']}, {side['precision']}, compute "
            f"capability {caps}{where}; {self.size_mb:.1f} MB in {self.seconds:.1f} s"
        )


def build_engine(
    onnx_path: Path,
    out: Path,
    *,
    profile: Profile = Profile(),
    compute_capabilities: tuple[str, ...] | None = None,
    workspace_gb: float | None = None,
    timing_cache: Path | None = None,
    overwrite: bool = False,
) -> BuiltEngine:
    """Compile a jsnet-edge ONNX file (fp32, fp16 or Q/DQ int8) into a TensorRT engine.

    Writes the engine atomically and its sidecar (`out.json`): the builder and its version,
    the compute capabilities it runs on (and the GPU, when built on one), precision,
    profile shapes and the hashes of the ONNX and the engine. Classic TensorRT keeps a
    timing cache beside the engine (one per version and GPU) that makes rebuilds fast.
    """
    out = check_output(out, overwrite=overwrite)
    meta = read_onnx_metadata(onnx_path)
    task, scale, colors, min_size, genotype = onnx_identity(meta)
    if min(profile.min) < min_size:
        raise OptionError(
            f"the profile's smallest input must be at least {min_size} pixels "
            "for this network (ESAB)"
        )
    t = import_tensorrt()
    gpu = None
    if t.rtx:
        caps = compute_capabilities or RTX_DEFAULT_CAPABILITIES
        source = "--compute-capability" if compute_capabilities else "builder default"
        if compute_capabilities and "current" in compute_capabilities:
            gpu, cc = gpu_identity()
            caps, source = (cc,), "the GPU it was built on"
        cache_file = None
    else:
        gpu, cc = gpu_identity() if cuda_device_count() else (None, None)
        caps, source = ((cc,) if cc else ()), "the GPU it was built on"
        cache_file = timing_cache or out.with_name(
            f"timing-{t.version}-{(gpu or 'gpu').replace(' ', '_')}.cache"
        )
    start = time.perf_counter()
    plan, config = build_plan(
        onnx_path,
        profile.shapes(colors),
        tensorrt=t,
        compute_capabilities=compute_capabilities,
        workspace_gb=workspace_gb,
        timing_cache=cache_file,
    )
    seconds = time.perf_counter() - start
    write_bytes(out, plan, overwrite=overwrite)
    if cache_file is not None:
        write_bytes(cache_file, bytes(config.get_timing_cache().serialize()))
    side = {
        "builder": t.name,
        "builder_version": t.version,
        "compute_capabilities": list(caps),
        "compute_capabilities_source": source,
        "gpu": gpu,
        "precision": meta["precision"],
        "task": task,
        "scale": scale,
        "colors": colors,
        "min_size": min_size,
        "genotype": json.loads(genotype),
        "profile": {
            "min": profile.shapes(colors)[0],
            "opt": profile.shapes(colors)[1],
            "max": profile.shapes(colors)[2],
        },
        "build_seconds": round(seconds, 2),
        "onnx": str(onnx_path),
        "onnx_sha256": sha256(Path(onnx_path)),
        "engine_sha256": sha256(out),
    }
    write_json(sidecar_path(out), side, overwrite=True)
    return BuiltEngine(out, side, seconds)
