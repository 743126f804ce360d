"""OpenVINO backend (CPU): f32, bf16 (AVX-512 BF16 / AMX) and int8 from Q/DQ ONNX."""

from __future__ import annotations

import json
import re
import tempfile
import threading
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from jsnet_edge.cache import optional_cache_dir
from jsnet_edge.errors import MissingDependencyError, ModelError, OptionError
from jsnet_edge.models.fileinfo import size_rules
from jsnet_edge.runtime.backend import InputLimits
from jsnet_edge.runtime.capabilities import has_module


def cpu_capabilities() -> list[str]:
    import openvino as ov

    return list(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def runs_bf16() -> bool:
    """Whether OpenVINO is installed and runs bf16 on this CPU (AVX-512 BF16 or AMX)."""
    return has_module("openvino") and "BF16" in cpu_capabilities()


def _framework(model) -> dict | None:
    """Our ONNX metadata as OpenVINO read it (strings; importing `onnx` for it would add a
    second to every start); None for a graph that is not one of ours."""
    try:
        section = model.get_rt_info()["framework"]
        return {k: model.get_rt_info(["framework", k]).astype(str) for k in section}
    except (RuntimeError, KeyError, TypeError, AttributeError):
        return None


def _genotype(model) -> dict | None:
    """The genotype in our metadata; None for a graph that is not one of ours."""
    try:
        return json.loads(_framework(model)["genotype"])
    except (TypeError, KeyError, ValueError):
        return None


def _probe_side(model) -> int:
    """The side of the small input compiled at open (so a graph the plugin cannot take
    fails there, in one line): 32 pixels, or the network's smallest input where that is
    more (ESAB behind a 4x unshuffle needs 60), a multiple of its unshuffle factor."""
    try:
        min_size, multiple = size_rules(_genotype(model))
    except (ValueError, TypeError, AttributeError):
        return 32  # not one of ours: its own shape rules are unknown
    side = max(32, min_size)
    return -(-side // multiple) * multiple


# Where a bf16 run keeps f32: in the paper's SR networks, from the cross-scale fusion
# module (`csfm`) to the output. There the tail's last convolution writes image values
# (0-255, the mean added) and the module before it sums several residual paths into large
# activations; bf16 keeps 8 significant bits, a step of 1 gray level above 128. On 25
# held-out photographs the authors' x2 lost 0.209 dB in bf16 (worst 0.75), our `sr-x2`
# 0.121 (worst 0.65); with the end in f32 0.013 and -0.009 dB, at 0.87x the all-bf16
# speed (x4: 0.69x, for 0.03-0.04 dB mean and 0.17-0.20 worst). Denoising and JPEG
# networks and the anchored real-time SR ones end with an add of the input (or its
# bilinear upscale), which OpenVINO already runs in f32: 0.01-0.03 dB in bf16, nothing to
# win (benchmarks/bf16.py; docs/benchmarks.md, "bf16 and the network's end").
F32_FROM = re.compile(r"(^|/)csfm(/|$)")


def end_in_f32(framework: dict | None) -> bool:
    """Whether a bf16 run of a network keeps its end in f32 (see `F32_FROM`), from our
    metadata: an SR network (scale > 1) whose tail writes the image, not anchored (no
    unshuffle)."""
    if not framework:
        return False
    try:
        genotype = json.loads(framework["genotype"])
        return int(framework["scale"]) > 1 and int(genotype.get("unshuffle", 1)) == 1
    except (KeyError, ValueError, TypeError, AttributeError):
        return False


def mark_end_f32(core, model):
    """`model` with every operation from the first one `F32_FROM` names to the output
    marked to keep f32 inside a bf16 run. OpenVINO's CPU plugin honours the mark
    ("precise", read from an IR: the Python API cannot set the attribute), so the model
    goes through an IR in a temporary folder once (0.25 s for the authors' x2). A graph
    without such names comes back unchanged."""
    import openvino as ov

    todo = [op for op in model.get_ordered_ops() if F32_FROM.search(op.get_friendly_name())]
    marked: set[str] = set()
    while todo:
        op = todo.pop()
        name = op.get_friendly_name()
        if name in marked:
            continue
        marked.add(name)
        todo.extend(t.get_node() for out in op.outputs() for t in out.get_target_inputs())
    if not marked:
        return model
    try:
        with tempfile.TemporaryDirectory(prefix="jsnet-edge-ov-") as tmp:
            xml = Path(tmp) / "model.xml"
            ov.save_model(model, str(xml), compress_to_fp16=False)
            tree = ET.parse(xml)
            weights = ov.Tensor(np.fromfile(xml.with_suffix(".bin"), dtype=np.uint8))
    except (OSError, RuntimeError) as e:  # a full or read-only temporary folder
        warnings.warn(
            f"could not write the temporary IR that keeps the network's end in f32 "
            f"({str(e).strip().splitlines()[0][:120]}): running all of it in bf16, up to "
            "0.2 dB lower; point TMPDIR at a writable folder with free space, or use fp32",
            stacklevel=3,
        )
        return model
    for layer in tree.getroot().iter("layer"):
        if layer.get("name") in marked and layer.get("type") not in ("Parameter", "Result"):
            rt = layer.find("rt_info")
            rt = ET.SubElement(layer, "rt_info") if rt is None else rt
            ET.SubElement(rt, "attribute", name="precise", version="0")
    return core.read_model(ET.tostring(tree.getroot()), weights)


class OpenVinoBackend:
    """Compiles an ONNX file for the CPU plugin.

    The inference precision is always set explicitly: OpenVINO otherwise runs bf16 on
    CPUs that have it, which would silently change the results of an "fp32" request.
    int8 files (Q/DQ) run their quantised convolutions in int8 and the rest in f32. bf16
    runs keep the end of the paper's SR networks in f32 (`F32_FROM`).

    The model is compiled for each input shape it meets (a few are kept): static shapes
    run 10-15% faster than the dynamic graph on the CPU plugin, and tiles and video frames
    repeat one shape.
    """

    MAX_SHAPES = 4

    name = "openvino"
    limits: InputLimits | None = None

    def __init__(
        self,
        onnx_path: str | Path,
        precision: str,
        device: str = "cpu",
        threads: int | None = None,
        streams: int = 1,
    ) -> None:
        try:
            import openvino as ov
            import openvino.properties as props
            import openvino.properties.hint as hints
            import openvino.properties.streams  # noqa: F401 - props.streams
        except ImportError:
            raise MissingDependencyError(
                "the openvino backend needs the openvino extra: pip install 'jsnet-edge[openvino]'"
            ) from None
        if device != "cpu":
            raise OptionError(f"the openvino backend runs on the cpu here, not {device!r}")
        if precision not in ("fp32", "bf16", "int8"):
            raise OptionError(f"openvino runs fp32, bf16 or int8, not {precision!r}")
        core = ov.Core()
        caps = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        if precision == "bf16" and "BF16" not in caps:
            raise OptionError(
                "this CPU has no bf16 support (AVX-512 BF16 or AMX); use fp32 or int8"
            )
        self.precision, self.device = precision, device
        config = {
            hints.inference_precision: ov.Type.bf16 if precision == "bf16" else ov.Type.f32,
        }
        if streams > 1:
            # Calls from `streams` threads at once run side by side, each on its share of
            # the cores: on two cores two 1-thread requests restore 1.3x more 720p frames
            # a second than one 2-thread request (the video pipeline keeps two in flight).
            config[props.streams.num] = streams
        else:
            config[hints.performance_mode] = hints.PerformanceMode.LATENCY
        if threads:
            config[props.inference_num_threads] = threads
        cache = optional_cache_dir("openvino")
        if cache is not None:  # compiled models kept: later starts skip most of the compile
            core.set_property({props.cache_dir: str(cache)})
        self.core, self.config, self.path = core, config, str(onnx_path)
        try:
            self.model = core.read_model(self.path)
            if precision == "bf16" and end_in_f32(_framework(self.model)):
                self.model = mark_end_f32(core, self.model)
        except RuntimeError as e:
            raise ModelError(
                f"OpenVINO cannot read {onnx_path}: {str(e).strip().splitlines()[0][:200]}"
            ) from None
        # Compiled models are shared; an infer request runs one call at a time, so each
        # thread has its own (one Restorer called from several threads: "Infer Request
        # is busy" before).
        self.compiled: dict[tuple[int, ...], object] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self.dtype = np.float32
        shape = self.model.input(0).get_partial_shape()
        if shape.is_static:  # a graph of one size (video frames): compiled for it now
            self._compile(tuple(d.get_length() for d in shape))
        else:
            side = _probe_side(self.model)
            self._compile((1, shape[1].get_length(), side, side))

    def _compile(self, shape: tuple[int, ...]):
        with self._lock:
            return self._compile_locked(shape)

    def _compile_locked(self, shape: tuple[int, ...]):
        if shape in self.compiled:
            return self.compiled[shape]
        if len(self.compiled) >= self.MAX_SHAPES:
            self.compiled.pop(next(iter(self.compiled)))
        model = self.model.clone()
        try:
            model.reshape({0: list(shape)})
            compiled = self.core.compile_model(model, "CPU", self.config)
        except RuntimeError as e:
            raise ModelError(
                f"OpenVINO cannot compile {self.path} for input {shape}: "
                f"{str(e).strip().splitlines()[0][:200]}"
            ) from None
        self.compiled[shape] = compiled
        return compiled

    def _request(self, shape: tuple[int, ...]):
        """This thread's infer request for `shape` (made again if the model was
        recompiled)."""
        compiled = self._compile(shape)
        mine = getattr(self._local, "requests", None)
        if mine is None:
            mine = self._local.requests = {}
        got = mine.get(shape)
        if got is None or got[0] is not compiled:
            if len(mine) >= self.MAX_SHAPES:
                mine.pop(next(iter(mine)))
            got = mine[shape] = (compiled, compiled.create_infer_request())
        return got

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=self.dtype)
        compiled, request = self._request(tuple(x.shape))
        out = request.infer({0: x})
        return np.asarray(out[compiled.output(0)], dtype=np.float32)
