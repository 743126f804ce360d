"""Building TensorRT engines from our ONNX files, and the JSON sidecar that describes them.

TensorRT 11 removed the FP16/INT8 builder flags and the INT8 calibrators: networks are
strongly typed and take their precision from the graph (fp16 tensors, or explicit Q/DQ
nodes for int8). TensorRT 10 (JetPack 6) accepts the same graphs when the network is
created STRONGLY_TYPED. So the builder here only compiles: precision was decided when the
ONNX was exported (`export --precision fp16`) or calibrated (`calibrate --target tensorrt`,
symmetric int8 as TensorRT requires), and those same files are what the CPU runtimes run
and the tests check.

Written against the documented Python API of TensorRT 10.x and 11.x; it has not been run
in our CI, which has no GPU (see README).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from jsnet_edge.devices import gpu_identity
from jsnet_edge.errors import MissingDependencyError, ModelError, OptionError
from jsnet_edge.export.onnx import onnx_identity, read_onnx_metadata
from jsnet_edge.outputs import check_output, write_bytes, write_json

TRT_MISSING = (
    "TensorRT is not installed (pip install 'jsnet-edge[tensorrt]' on a machine with an "
    "NVIDIA GPU and driver). On the CPU use the openvino backend (fp32, bf16, int8) or "
    "onnxruntime: `jsnet-edge bench MODEL` compares them."
)


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError:
        raise MissingDependencyError(TRT_MISSING) from None
    return trt


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
            "tensorrt",
            "gpu",
            "compute_capability",
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
    workspace_gb: float | None = None,
    timing_cache: Path | None = None,
) -> tuple[bytes, object]:
    """Parse an ONNX file (fp32, fp16 or Q/DQ int8) into a strongly typed network and build
    it for one optimisation profile (min, opt, max input shapes): the one place jsnet-edge
    makes TensorRT networks. Returns the serialised engine and the builder config (whose
    timing cache the caller may save)."""
    trt = import_tensorrt()
    logger = capturing_logger(trt)
    builder = trt.Builder(logger)
    # Strongly typed: required on TensorRT 10 for graph-decided precision, implied on 11.
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    network = builder.create_network(0 if flag is None else 1 << int(flag))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"TensorRT cannot parse {onnx_path}: {errors[:300]}")
    config = builder.create_builder_config()
    if workspace_gb is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(network.get_input(0).name, *shapes)
    config.add_optimization_profile(opt_profile)
    if timing_cache is not None:
        data = timing_cache.read_bytes() if timing_cache.is_file() else b""
        config.set_timing_cache(config.create_timing_cache(data), ignore_mismatch=False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ModelError(
            "TensorRT failed to build the engine: " + "; ".join(logger.messages[-3:])[:400]
        )
    return bytes(plan), config


def build_engine(
    onnx_path: Path,
    out: Path,
    *,
    profile: Profile = Profile(),
    workspace_gb: float | None = 2.0,
    timing_cache: Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Compile a jsnet-edge ONNX file (fp32, fp16 or Q/DQ int8) into a TensorRT engine.

    Writes the engine atomically and its sidecar (`out.json`) with the TensorRT version,
    GPU name and compute capability, precision, profile shapes and the hashes of the ONNX
    and the engine. The timing cache (default beside the engine, one per TensorRT version
    and GPU) makes rebuilds fast.
    """
    out = check_output(out, overwrite=overwrite)
    meta = read_onnx_metadata(onnx_path)
    task, scale, colors, min_size, genotype = onnx_identity(meta)
    if min(profile.min) < min_size:
        raise OptionError(
            f"the profile's smallest input must be at least {min_size} pixels "
            "for this network (ESAB)"
        )
    trt = import_tensorrt()
    gpu, cc = gpu_identity()
    cache_file = timing_cache or out.with_name(
        f"timing-{trt.__version__}-{gpu.replace(' ', '_')}.cache"
    )
    plan, config = build_plan(
        onnx_path, profile.shapes(colors), workspace_gb=workspace_gb, timing_cache=cache_file
    )
    write_bytes(out, plan, overwrite=overwrite)
    write_bytes(cache_file, bytes(config.get_timing_cache().serialize()))
    side = {
        "tensorrt": trt.__version__,
        "gpu": gpu,
        "compute_capability": cc,
        "precision": meta["precision"],
        "task": task,
        "scale": scale,
        "colors": colors,
        "min_size": min_size,
        "genotype": genotype.to_dict(),
        "profile": {
            "min": profile.shapes(colors)[0],
            "opt": profile.shapes(colors)[1],
            "max": profile.shapes(colors)[2],
        },
        "onnx": str(onnx_path),
        "onnx_sha256": sha256(Path(onnx_path)),
        "engine_sha256": sha256(out),
    }
    write_json(sidecar_path(out), side)
    return out
