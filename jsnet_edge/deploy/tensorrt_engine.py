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

from jsnet_edge.atomic import atomic_output
from jsnet_edge.errors import MissingDependencyError, ModelError, OptionError

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


def gpu_identity() -> tuple[str, str]:
    """(GPU name, compute capability 'major.minor') through torch or cuda-python."""
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            return torch.cuda.get_device_name(0), f"{major}.{minor}"
    except ImportError:
        pass
    from jsnet_edge.deploy.cuda_memory import cudart

    rt = cudart()
    err, prop = rt.cudaGetDeviceProperties(0)
    if int(err) != 0:
        raise OptionError("no CUDA GPU is usable here (cudaGetDeviceProperties failed)")
    name = prop.name.decode() if isinstance(prop.name, bytes) else str(prop.name)
    return name.rstrip("\x00"), f"{prop.major}.{prop.minor}"


def check_engine_matches(side: dict, engine: Path) -> None:
    """Refuse, with the rebuild command, an engine made for another GPU or TensorRT."""
    trt = import_tensorrt()
    gpu, cc = gpu_identity()
    rebuild = (
        f"rebuild it here: jsnet-edge build-engine MODEL --{side['precision']} -o {engine.name}"
        if side["precision"] != "fp32"
        else f"rebuild it here: jsnet-edge build-engine MODEL -o {engine.name}"
    )
    if side["tensorrt"] != trt.__version__:
        raise ModelError(
            f"{engine} was built with TensorRT {side['tensorrt']}, this is "
            f"{trt.__version__}; engines only load in the version that built them; "
            f"{rebuild}"
        )
    if side["compute_capability"] != cc or side["gpu"] != gpu:
        raise ModelError(
            f"{engine} was built for {side['gpu']} (compute "
            f"{side['compute_capability']}), this GPU is {gpu} (compute {cc}); "
            f"{rebuild}"
        )
    if sha256(engine) != side["engine_sha256"]:
        raise ModelError(f"{engine} does not match its sidecar (corrupt or replaced); {rebuild}")


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


def build_engine(
    onnx_path: Path,
    out: Path,
    *,
    profile: Profile = Profile(),
    workspace_gb: float = 2.0,
    timing_cache: Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Compile a jsnet-edge ONNX file (fp32, fp16 or Q/DQ int8) into a TensorRT engine.

    Writes the engine atomically and its sidecar (`out.json`) with the TensorRT version,
    GPU name and compute capability, precision, profile shapes and the hashes of the ONNX
    and the engine. The timing cache (default beside the engine, one per TensorRT version
    and GPU) makes rebuilds fast.
    """
    from jsnet_edge.deploy.export import onnx_identity, read_onnx_metadata

    out = Path(out)
    if out.exists() and not overwrite:
        raise OptionError(f"{out} exists; pass --overwrite to replace it")
    meta = read_onnx_metadata(onnx_path)
    task, scale, colors, min_size, genotype = onnx_identity(meta)
    if min(profile.min) < min_size:
        raise OptionError(
            f"the profile's smallest input must be at least {min_size} pixels "
            "for this network (ESAB)"
        )
    trt = import_tensorrt()
    gpu, cc = gpu_identity()
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
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(network.get_input(0).name, *profile.shapes(colors))
    config.add_optimization_profile(opt_profile)
    cache_file = timing_cache or out.with_name(
        f"timing-{trt.__version__}-{gpu.replace(' ', '_')}.cache"
    )
    cache = config.create_timing_cache(cache_file.read_bytes() if cache_file.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ModelError(
            "TensorRT failed to build the engine: " + "; ".join(logger.messages[-3:])[:400]
        )
    with atomic_output(out) as tmp:
        tmp.write_bytes(bytes(plan))
    cache_file.write_bytes(bytes(config.get_timing_cache().serialize()))
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
    sidecar_path(out).write_text(json.dumps(side, indent=2))
    return out
