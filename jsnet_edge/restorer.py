"""`Restorer`: the Python API. An image (numpy, as OpenCV or PIL give it) in, the restored
image out, in the same dtype and layout, whatever the backend; and `stream` /
`restore_frames` for sequences of frames (numpy only, so they work on frames from anywhere;
the video pipeline is built on them)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from jsnet_edge.devices import available_memory
from jsnet_edge.errors import ImageError, OptionError
from jsnet_edge.models.authors import AUTHORS
from jsnet_edge.models.frame_layout import FrameLayout
from jsnet_edge.runtime.backend import Backend
from jsnet_edge.runtime.factory import open_backend, open_frames_backend
from jsnet_edge.runtime.source import load_source
from jsnet_edge.tiling import (
    WHOLE_FRAME_TILE,
    as_slice,
    check_tiling,
    run_tiled,
    run_tiled_streaming,
)
from jsnet_edge.zoo import is_video_model, zoo_entry

if TYPE_CHECKING:
    from jsnet_edge.models.network import JSNet

DEFAULT_TILE = 512
DEFAULT_OVERLAP = 32
# Float images are on 0..1; noise or resampling may overshoot that a little (kept, as the
# network was trained on it), but values far outside are another scale (0..255) and would
# come out white.
FLOAT_SLACK = 0.5


class Restorer:
    """Restores images with one model on one backend.

    Args:
        model: a model file (.safetensors), a zoo name (see `jsnet-edge models`), a JSNet,
            an .onnx file from `jsnet-edge export`/`calibrate`, or a TensorRT .engine.
        backend: "auto" (the default: the fastest installed for the device, measured once
            and cached, as the command line picks it; `describe()` says which), "torch",
            "onnxruntime", "openvino" or "tensorrt". `backend="torch"` runs the module
            itself (fp32, the reference the other backends are checked against).
        device: "cpu" or "cuda".
        precision: "auto" (the default: the fastest that costs no measurable quality, bf16
            on OpenVINO where the CPU has it, <= 0.05 dB; a zoo model's shipped INT8
            file where its report holds <= 0.1 dB and it is measured faster; else as
            None), "fp32", "bf16",
            "fp16", "int8"; None means fp32, or the precision an .onnx/.engine file was
            made in.
        tile: largest tile side in input pixels; larger images are restored in overlapping
            tiles so memory stays bounded (about 0.5 GB for the paper's network at 512).
            None: 512, or whole frames up to 1920 for the zoo's real-time models.
        tile_overlap: input pixels shared by neighbouring tiles.
        color_order: "bgr" (OpenCV's order, the default) or "rgb" for 3/4-channel input.
        compile: run the torch backend through `torch.compile` (slow first call).
        threads: CPU threads of onnxruntime / OpenVINO (torch's are process-wide: see
            `jsnet_edge.devices.torch_threads`); None: the runtime's own choice.
    """

    def __init__(
        self,
        model: str | Path | JSNet,
        backend: str = "auto",
        device: str = "cpu",
        precision: str | None = "auto",
        *,
        tile: int | None = None,
        tile_overlap: int = DEFAULT_OVERLAP,
        color_order: str = "bgr",
        compile: bool = False,
        threads: int | None = None,
    ) -> None:
        if color_order not in ("bgr", "rgb"):
            raise OptionError(f"color_order must be 'bgr' or 'rgb', not {color_order!r}")
        source = load_source(model, precision)
        self._source = source
        # What was asked for (a zoo name or a file), for logs and video stats: `--task`
        # picks the model by frame size, so a run's summary says which one it was.
        self.model_name = str(model) if isinstance(model, (str, Path)) else "(a JSNet in memory)"
        self.info = source.info
        self.task = source.info.task
        self.scale = source.info.scale
        self.colors = source.info.colors
        self.min_size = source.info.min_size
        if tile is None:
            real_time = isinstance(model, str) and is_video_model(model)
            tile = WHOLE_FRAME_TILE if real_time else DEFAULT_TILE
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.color_order = color_order
        check_tiling(tile, tile_overlap, self.min_size)  # before seconds of loading
        self._keep: list = []  # temporary files the backend needs while it lives
        self.backend = open_backend(
            source, backend, device, precision, self._keep, compile=compile, threads=threads
        )
        self.requested_backend = backend
        self.requested_precision = precision
        self._threads = threads
        self._frames: dict[tuple[FrameLayout, int], Backend | None] = {}
        limits = self.backend.limits  # engines have a shape profile: tiles stay inside it
        if limits is not None:
            self.tile = min(self.tile, limits.width, limits.height)

    @property
    def model(self) -> JSNet | None:
        """The torch module (built on first use); None for .onnx and .engine files."""
        if self._source.net is None and self._source.model_file is None:
            return None
        return self._source.load_net()

    @classmethod
    def from_pretrained(cls, name: str, **kwargs) -> Restorer:
        """A Restorer for a model of the bundled zoo (`jsnet-edge models` lists them) or
        an authors' model (`authors-x2` ..., downloaded and converted on first use), on
        the fastest backend and precision as `Restorer` picks them by default;
        `precision="int8"` takes the calibrated INT8 file shipped with a zoo model."""
        if name not in AUTHORS:
            zoo_entry(name)  # a clear error for unknown names
        return cls(name, **kwargs)

    def describe(self) -> str:
        """One line for logs: which backend runs, on what, in which precision, and which of
        them `auto` picked (measured here, so the line says what a run really used)."""
        b = self.backend
        how = " (picked by auto)" if self.requested_backend == "auto" else ""
        how_p = " (picked by auto)" if self.requested_precision == "auto" else ""
        return f"{self.task} on {b.name}{how}, {b.device}, {b.precision}{how_p}"

    def __repr__(self) -> str:
        b = self.backend
        return (
            f"Restorer(task={self.task!r}, backend={b.name!r}, device={b.device!r}, "
            f"precision={b.precision!r}, genotype={self.info.genotype.to_string()!r})"
        )

    def stream(self, frames, batch: int = 1):
        """Restore an iterable of frames lazily (a generator), e.g. a video's frames."""
        return stream(self, frames, batch=batch)

    def frames_backend(self, layout: FrameLayout, streams: int = 1) -> Backend | None:
        """This restorer's network, backend and precision on video frames in their own
        4:2:0 layout (I420: `jsnet_edge.models.frames`), for pipelines that decode and
        encode YUV: (1, 1, 3H/2, W) float32 frames in and out, no RGB conversion outside
        the graph. Exported once per frame size (cached). None where this model or backend
        cannot (an .onnx/int8/engine file, torch, SR or gray models, sizes the network
        refuses): use the RGB path. `streams`: calls it should run side by side (from as
        many threads)."""
        key = (layout, streams)
        if key not in self._frames:
            b = self.backend
            self._frames[key] = open_frames_backend(
                self._source,
                b.name,
                b.device,
                b.precision,
                layout,
                self._keep,
                self._threads,
                streams,
            )
        return self._frames[key]

    def restore_array(self, x: np.ndarray) -> np.ndarray:
        """The network on an NCHW float32 array (0..255, model channels), with tiling."""
        return run_tiled(
            self.backend,
            x,
            scale=self.scale,
            tile=self.tile,
            overlap=self.tile_overlap,
            min_size=self.min_size,
            multiple=self.info.multiple,
        )

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Restore one image.

        Accepts HxW or HxWxC (C = 1, 2 = gray+alpha, 3, 4 = colour+alpha), uint8, uint16 or
        float (0..1). Returns the same dtype and layout; SR outputs are `scale` times larger,
        alpha included (resized bicubically).

        Memory stays bounded for any size: tiles are read from `image` as they are needed
        and restored rows go straight into the preallocated output, so beside the input
        and the output only one band of tiles is held (`jsnet_edge.tiling`). An output
        that cannot fit in the memory available is refused before any work.
        """
        img = _check_image(image)
        squeeze = img.ndim == 2
        if squeeze:
            img = img[:, :, None]
        h, w, channels = img.shape
        has_alpha = channels in (2, 4)
        planes = channels - 1 if has_alpha else channels
        s = self.scale
        check_memory(h, w, channels, img.dtype, s, self.tile, self.colors)
        out = np.empty((h * s, w * s, channels), img.dtype)
        swap = planes == 3 and self.color_order == "bgr"

        def read(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
            tile = img[as_slice(rows)][:, as_slice(cols), :planes]  # H x W x planes
            if tile.dtype != np.uint8:  # uint8 converts in the one copy below
                tile = _to_unit255(tile)
            if swap:
                tile = tile[:, :, ::-1]
            if self.colors == 3 and planes == 1:
                batch = np.repeat(tile.transpose(2, 0, 1)[None], 3, axis=1)
            elif self.colors == 1 and planes == 3:
                batch = tile.transpose(2, 0, 1)[:, None]  # each colour plane as a gray image
            else:
                batch = tile.transpose(2, 0, 1)[None]
            return np.ascontiguousarray(batch, dtype=np.float32)

        def write(y0: int, band: np.ndarray) -> None:
            if self.colors == 3 and planes == 1:
                y = band.mean(axis=1, keepdims=True)[0].transpose(1, 2, 0)
            elif self.colors == 1 and planes == 3:
                y = band[:, 0].transpose(1, 2, 0)
            else:
                y = band[0].transpose(1, 2, 0)
            if swap:
                y = y[:, :, ::-1]
            _put_unit255(out[y0 : y0 + y.shape[0], :, :planes], y)

        run_tiled_streaming(
            self.backend,
            read,
            write,
            h,
            w,
            scale=s,
            tile=self.tile,
            overlap=self.tile_overlap,
            min_size=self.min_size,
            multiple=self.info.multiple,
        )
        if has_alpha:
            alpha = img[:, :, -1]
            if s > 1:
                import cv2

                a = cv2.resize(alpha, (w * s, h * s), interpolation=cv2.INTER_CUBIC)
                if np.issubdtype(alpha.dtype, np.floating):
                    a = np.clip(a, 0.0, 1.0)
                alpha = a.astype(alpha.dtype)
            out[:, :, -1] = alpha
        return out[:, :, 0] if squeeze else out


def memory_needed(h: int, w: int, channels: int, dtype, scale: int, tile: int, colors: int) -> int:
    """Bytes a restoration holds beside its input: the output, and one band of tiles
    (float32 accumulators as wide as the output) with its network call."""
    itemsize = np.dtype(dtype).itemsize
    output = h * scale * w * scale * channels * itemsize
    band_rows = min(tile, h) * scale
    band = band_rows * w * scale * (max(colors, channels) + 1) * 4
    call = 3 * (min(tile, h) * min(tile, w) * scale * scale * 3 * 4) * 8  # activations, a margin
    return output + band + call


def check_memory(h: int, w: int, channels: int, dtype, scale: int, tile: int, colors: int) -> None:
    need = memory_needed(h, w, channels, dtype, scale, tile, colors)
    free = available_memory()
    if free is not None and need > free:
        gb = 2**30
        raise ImageError(
            f"restoring this {w}x{h} image needs about {need / gb:.1f} GB of memory beside the "
            f"image itself (the {w * scale}x{h * scale} output is "
            f"{h * scale * w * scale * channels * np.dtype(dtype).itemsize / gb:.1f} GB) and "
            f"{free / gb:.1f} GB are available; free memory or restore a smaller image"
        )


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy array, got {type(image).__name__}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)):
        raise ImageError(f"expected an HxW or HxWxC image with C in 1..4, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageError(f"the image is empty (shape {image.shape})")
    if image.dtype == np.bool_ or not (
        image.dtype in (np.uint8, np.uint16) or np.issubdtype(image.dtype, np.floating)
    ):
        raise ImageError(f"unsupported pixel type {image.dtype}; use uint8, uint16 or float (0..1)")
    if np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise ImageError("the image contains NaN or infinite values")
        lo, hi = float(image.min()), float(image.max())
        if lo < -FLOAT_SLACK or hi > 1.0 + FLOAT_SLACK:
            scale = " (it looks like 0..255: divide by 255)" if hi <= 255.0 + FLOAT_SLACK else ""
            raise ImageError(
                f"float images must hold values in 0..1, this one spans {lo:g}..{hi:g}{scale}; "
                "or pass uint8 / uint16 arrays as they are"
            )
    return image


def _to_unit255(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img.astype(np.float32)
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 257.0
    return img.astype(np.float32) * 255.0


def _put_unit255(dst: np.ndarray, y: np.ndarray) -> None:
    """Write network output `y` (0..255 floats, ours to change) into `dst` in its dtype:
    uint8 in place (clip, round, one converting copy), as `_from_unit255` does it."""
    if dst.dtype != np.uint8 or not y.flags.writeable:
        dst[...] = _from_unit255(y, dst.dtype)
        return
    np.clip(y, 0.0, 255.0, out=y)
    y += 0.5
    np.copyto(dst, y, casting="unsafe")


def _from_unit255(y: np.ndarray, dtype: np.dtype) -> np.ndarray:
    y = np.clip(y, 0.0, 255.0)
    if dtype == np.uint8:
        return (y + 0.5).astype(np.uint8)
    if dtype == np.uint16:
        return (y * 257.0 + 0.5).astype(np.uint16)
    return (y / 255.0).astype(dtype)


# --- sequences of frames: `Restorer.stream` and the video pipeline ---------------------


def restore_frames(
    restorer: Restorer, frames: list[np.ndarray], color_order: str | None = None
) -> list[np.ndarray]:
    """Restore several frames, in one backend call when they allow it.

    Same-shaped HxWx3 uint8 frames for an RGB model go through the backend as one NCHW
    batch (what GPUs need to be fast); anything else (gray or alpha frames, 16-bit, mixed
    sizes, gray models) goes frame by frame through `restorer(...)`, which handles all of it.

    Args:
        color_order: "bgr" or "rgb", the order of `frames`; default: the restorer's own.
    """
    order = color_order or restorer.color_order
    if order not in ("bgr", "rgb"):
        raise OptionError(f"color_order must be 'bgr' or 'rgb', not {order!r}")
    if not frames:
        return []
    first = frames[0]
    batchable = (
        len(frames) > 1
        and restorer.colors == 3
        and all(
            isinstance(f, np.ndarray)
            and f.dtype == np.uint8
            and f.ndim == 3
            and f.shape[2] == 3
            and f.shape == first.shape
            for f in frames
        )
    )
    if not batchable:
        if order == restorer.color_order:
            return [restorer(f) for f in frames]
        return [_swap(restorer(_swap(f))) for f in frames]
    limit = _max_batch(restorer)
    if limit is not None and len(frames) > limit:  # e.g. a TensorRT engine's profile
        return [
            out
            for i in range(0, len(frames), limit)
            for out in restore_frames(restorer, frames[i : i + limit], order)
        ]
    x = np.stack(frames)  # N H W C
    if order == "bgr":
        x = x[..., ::-1]
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)
    y = restorer.restore_array(x)
    y = _from_unit255(y, np.uint8).transpose(0, 2, 3, 1)  # Restorer.__call__'s rounding
    if order == "bgr":
        y = y[..., ::-1]
    return [np.ascontiguousarray(f) for f in y]


def _max_batch(restorer: Restorer) -> int | None:
    """The largest batch the backend takes, where it has a limit (engine profiles do)."""
    limits = restorer.backend.limits
    return max(1, limits.batch) if limits is not None else None


def _swap(img: np.ndarray) -> np.ndarray:
    """RGB <-> BGR for colour images; gray and other layouts pass through."""
    if img.ndim == 3 and img.shape[2] in (3, 4):
        return np.concatenate([img[..., 2::-1], img[..., 3:]], axis=2)
    return img


def stream(
    restorer: Restorer, frames: Iterable[np.ndarray], batch: int = 1
) -> Iterator[np.ndarray]:
    """Yield the restored frames of `frames`, in order, `batch` at a time.

    A generator, so a video of any length runs in the memory of one batch: frames are pulled
    from `frames` only as they are needed. Frames are in the restorer's colour order.
    """
    if batch < 1:
        raise OptionError(f"batch must be at least 1, got {batch}")
    pending: list[np.ndarray] = []
    for frame in frames:
        pending.append(frame)
        if len(pending) == batch:
            yield from restore_frames(restorer, pending)
            pending = []
    if pending:
        yield from restore_frames(restorer, pending)
