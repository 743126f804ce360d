"""What an exported graph is, read without torch: the input and output names every graph
uses, and the identity jsnet-edge writes into the ONNX metadata (task, colours, sizes,
genotype, precision). The runtimes and the engine builder read files through here."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jsnet_edge.errors import ModelError

INPUT, OUTPUT = "input", "output"
OPSET = 17


def read_onnx_metadata(path: str | Path) -> dict[str, str]:
    """Our metadata from an .onnx file, with a clear error when it is not one of ours."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"ONNX file {path} does not exist")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError, ValueError, ... for non-ONNX bytes
        raise ModelError(
            f"{path} is not a readable ONNX file ({type(e).__name__}); export one "
            "with `jsnet-edge export MODEL -o model.onnx`"
        ) from None
    meta = {p.key: p.value for p in proto.metadata_props}
    if meta.get("jsnet_edge.format") != "1":
        raise ModelError(
            f"{path} is an ONNX file but not one exported by jsnet-edge (no task/"
            "genotype metadata); export it with `jsnet-edge export`"
        )
    return meta


def onnx_identity(meta: dict[str, str]) -> tuple[str, int, int, int, str]:
    """(task, scale, colors, min_size, genotype JSON) from our ONNX metadata."""
    return (
        meta["task"],
        int(meta["scale"]),
        int(meta["colors"]),
        int(meta["min_size"]),
        meta["genotype"],
    )


def onnx_input_dtype(path_or_proto) -> np.dtype:
    import onnx

    proto = (
        onnx.load(str(path_or_proto), load_external_data=False)
        if not hasattr(path_or_proto, "graph")
        else path_or_proto
    )
    elem = proto.graph.input[0].type.tensor_type.elem_type
    return np.dtype(np.float16) if elem == onnx.TensorProto.FLOAT16 else np.dtype(np.float32)
