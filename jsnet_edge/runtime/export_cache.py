"""Graphs exported once: a model file's ONNX, kept in the user cache under the file's
content hash (and the jsnet-edge version that exported it), so that opening it again on
onnxruntime or OpenVINO skips the export, and the seconds of importing torch with it."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from jsnet_edge._version import __version__
from jsnet_edge.cache import healed, optional_cache_dir
from jsnet_edge.export.fold import FOLD_VERSION
from jsnet_edge.models.frame_layout import FrameLayout
from jsnet_edge.outputs import write_text
from jsnet_edge.runtime.source import ModelSource
from jsnet_edge.zoo import ZOO


def file_key(path: Path, full: bool = False) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest() if full else h.hexdigest()[:24]


def exported(
    source: ModelSource, precision: str, keep: list, frames: FrameLayout | None = None
) -> Path:
    """The ONNX of `source`'s network in `precision` (fp32 or fp16), on RGB or, with
    `frames`, on I420 video frames of that layout: from the cache when this exact model
    file was exported before, else exported now (into the cache, or a temporary folder
    kept alive by `keep` when the model has no file or the cache is off)."""
    shipped = _shipped(source.model_file)
    if shipped is not None and precision == "fp32" and frames is None:
        return shipped
    folder = optional_cache_dir("onnx") if source.model_file is not None else None
    variant = "" if frames is None else f"-{frames.key}"
    if folder is not None:
        name = f"{file_key(source.model_file)}-{__version__}-fold{FOLD_VERSION}-{precision}"
        path = folder / f"{name}{variant}.onnx"
        if path.is_file():
            problem = _damaged(path)
            if problem is None:
                return path
            healed("graph", path, problem)
        from jsnet_edge.export.onnx import export_onnx

        export_onnx(source.load_net(), path, precision=precision, frames=frames)
        _seal(path)
        return path
    else:
        tmp = tempfile.TemporaryDirectory(prefix="jsnet-edge-")
        keep.append(tmp)
        path = Path(tmp.name) / "model.onnx"
    from jsnet_edge.export.onnx import export_onnx  # torch: only when there is no cached graph

    return export_onnx(source.load_net(), path, precision=precision, frames=frames)


def _seal_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _seal(path: Path) -> None:
    """Record the hash of a graph just exported into the cache (a cache only saves time:
    a seal that cannot be written is checked the slow way next time)."""
    try:
        write_text(_seal_path(path), file_key(path, full=True))
    except Exception:  # noqa: BLE001
        pass


def _damaged(path: Path) -> str | None:
    """Why a cached graph cannot be used (truncated, overwritten ...), or None. Its seal
    (the hash recorded when it was exported) is checked in milliseconds; without one (an
    older cache) it must parse and pass the ONNX checker, and is then sealed."""
    seal = _seal_path(path)
    try:
        expected = seal.read_text().strip()
    except OSError:
        expected = None
    if expected is not None:
        return None if file_key(path, full=True) == expected else "its content changed"
    import onnx

    try:
        onnx.checker.check_model(onnx.load(str(path)))
    except Exception as e:  # noqa: BLE001 - protobuf and checker errors alike: re-export
        return f"{type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''}"
    _seal(path)
    return None


def _shipped(model_file: Path | None) -> Path | None:
    """The zoo's own export of a zoo model file, where the package ships one."""
    if model_file is None:
        return None
    entry = ZOO.get(model_file.stem)
    if entry is None or entry.path.resolve() != model_file.resolve():
        return None
    return entry.onnx_path if entry.onnx_path.is_file() else None
