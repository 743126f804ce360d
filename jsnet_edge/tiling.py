"""Overlapping tiles, so that any image size runs in bounded memory.

Tiles all have the same size (the last one of a row or column is moved back inside the
image), which suits backends with fixed or profiled shapes (TensorRT, OpenVINO). Their
outputs are blended with weights that ramp linearly across the overlap, so seams vanish
even though JSNet's channel attentions see slightly different statistics per tile.

Tiles are restored one row of tiles at a time into a band of output rows; the rows that
no later tile touches are handed to a writer and the band moves on. So beside the input
and the output, memory holds one band (tile height x full width, float32), whatever the
image size: the caller can read tiles from a uint8 image and write into a preallocated
uint8 output.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from jsnet_edge.errors import OptionError

Run = Callable[[np.ndarray], np.ndarray]
# read(rows, cols) -> N x C x len(rows) x len(cols) float32 input for those input pixels
Read = Callable[[np.ndarray, np.ndarray], np.ndarray]
# write(y0, band) with band N x C x rows x W*scale: finished output rows y0 .. y0 + rows
Write = Callable[[int, np.ndarray], None]

# Real-time zoo models are small and run their body at reduced resolution: whole frames up
# to this side fit in little memory, and tiles would recompute their overlaps (a 640x360
# frame in 512 px tiles ran 2.5x slower than whole; 1280x720 in 640 px tiles is 2.7x the
# pixels).
WHOLE_FRAME_TILE = 1920


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def _ramp(length: int, ramp: int, left: bool, right: bool) -> np.ndarray:
    w = np.ones(length, np.float32)
    if ramp > 0:
        up = (np.arange(ramp, dtype=np.float32) + 0.5) / ramp
        if left:
            w[:ramp] = np.minimum(w[:ramp], up)
        if right:
            w[-ramp:] = np.minimum(w[-ramp:], up[::-1])
    return w


def padded_size(length: int, min_size: int, multiple: int = 1) -> int:
    """The side after padding to at least `min_size` and a multiple of `multiple`."""
    n = max(length, min_size)
    return n + -n % multiple


def padded_index(length: int, padded: int, start: int, stop: int) -> np.ndarray:
    """Source indices of positions start..stop of a side padded from `length` to `padded`
    at its end: mirrored (without repeating the edge), or the edge repeated where the pad
    is as long as the side."""
    idx = np.arange(start, stop)
    if padded - length < length:
        return np.where(idx < length, idx, 2 * length - 2 - idx)
    return np.minimum(idx, length - 1)


def as_slice(idx: np.ndarray) -> np.ndarray | slice:
    """A run of consecutive indices as a slice (a view, no copy: whole frames and inner
    tiles), else the indices themselves (mirrored padding)."""
    n = len(idx)
    if n and idx[-1] - idx[0] == n - 1 and (n < 3 or bool(np.all(np.diff(idx) == 1))):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


def pad_to_min(x: np.ndarray, min_size: int, multiple: int = 1) -> np.ndarray:
    """Pad the bottom/right of an NCHW array so both sides reach `min_size` and are
    multiples of `multiple` (mirrored; the edge repeated where the pad is too long)."""
    h, w = x.shape[2:]
    hp, wp = padded_size(h, min_size, multiple), padded_size(w, min_size, multiple)
    if (hp, wp) == (h, w):
        return x
    return x[:, :, padded_index(h, hp, 0, hp)][:, :, :, padded_index(w, wp, 0, wp)]


def check_tiling(tile: int, overlap: int, min_size: int) -> None:
    if tile < max(min_size, 8):
        raise OptionError(
            f"tile size {tile} is too small; this network needs at least {max(min_size, 8)} pixels"
        )
    if not 0 <= overlap < tile // 2:
        raise OptionError(
            f"tile overlap must be between 0 and half the tile ({tile // 2 - 1}), got {overlap}"
        )


def run_tiled_streaming(
    run: Run,
    read: Read,
    write: Write,
    height: int,
    width: int,
    *,
    scale: int,
    tile: int,
    overlap: int,
    min_size: int = 1,
    batch: int = 1,
    multiple: int = 1,
) -> None:
    """Restore an image of `height` x `width` input pixels tile by tile, band by band.

    Args:
        run: a backend call (NCHW -> NCHW, `scale` times larger).
        read: the input of given (padded) rows and columns, as NCHW float32; indices past
            the image are already mapped back inside it (see `padded_index`).
        write: receives finished output rows in order, cropped to the image (not padded).
        tile: largest tile side, in input pixels; images that fit run in one piece.
        overlap: input pixels shared by neighbouring tiles.
        min_size: smallest side the network accepts; smaller inputs are padded.
        batch: tiles per call (more is faster on GPUs, costs memory).
        multiple: input sides the network needs to be multiples of (its unshuffle factor);
            inputs are padded and tiles placed on that grid.
    """
    check_tiling(tile, overlap, min_size)
    if multiple > 1:  # tiles on the grid: size and overlap multiples, so are their starts
        tile -= tile % multiple
        overlap = min(
            -(-overlap // multiple) * multiple, max(0, (tile // 2 - 1) // multiple * multiple)
        )
    h, w = padded_size(height, min_size, multiple), padded_size(width, min_size, multiple)
    out_h, out_w = height * scale, width * scale
    rows_of = lambda a, b: padded_index(height, h, a, b)  # noqa: E731
    cols_of = lambda a, b: padded_index(width, w, a, b)  # noqa: E731
    if h <= tile and w <= tile:
        y = run(read(rows_of(0, h), cols_of(0, w)))
        write(0, y[:, :, :out_h, :out_w])
        return
    th, tw = min(tile, h), min(tile, w)
    ys, xs = tile_starts(h, th, overlap), tile_starts(w, tw, overlap)
    acc = weight = None  # the band: output rows band_y0 .. band_y0 + its height
    band_y0 = 0
    for row, y in enumerate(ys):
        top, bottom = y * scale, (y + th) * scale
        boxes = [(y, x) for x in xs]
        for i in range(0, len(boxes), batch):
            group = boxes[i : i + batch]
            crops = np.concatenate([read(rows_of(y, y + th), cols_of(x, x + tw)) for _, x in group])
            res = run(crops)
            n = res.shape[0] // len(group)
            if acc is None:
                acc = np.zeros((n, res.shape[1], th * scale, w * scale), np.float32)
                weight = np.zeros((th * scale, w * scale), np.float32)
            wy = _ramp(th * scale, overlap * scale, y > 0, y + th < h)
            for j, (_, x) in enumerate(group):
                wx = _ramp(tw * scale, overlap * scale, x > 0, x + tw < w)
                wt = wy[:, None] * wx[None, :]
                cols = slice(x * scale, (x + tw) * scale)
                r0 = top - band_y0
                acc[:, :, r0 : r0 + th * scale, cols] += res[j * n : (j + 1) * n] * wt
                weight[r0 : r0 + th * scale, cols] += wt
        # Rows above the next tile row get nothing more: hand them out, keep the rest.
        done = (ys[row + 1] * scale if row + 1 < len(ys) else bottom) - band_y0
        if done > 0:
            _write_rows(write, acc[:, :, :done], weight[:done], band_y0, out_h, out_w)
            keep = acc.shape[2] - done
            new_acc = np.zeros_like(acc)
            new_weight = np.zeros_like(weight)
            new_acc[:, :, :keep] = acc[:, :, done:]
            new_weight[:keep] = weight[done:]
            acc, weight, band_y0 = new_acc, new_weight, band_y0 + done


def _write_rows(write: Write, acc, weight, y0: int, out_h: int, out_w: int) -> None:
    rows = min(acc.shape[2], out_h - y0)
    if rows > 0:
        write(y0, acc[:, :, :rows, :out_w] / weight[None, None, :rows, :out_w])


def run_tiled(
    run: Run,
    x: np.ndarray,
    *,
    scale: int,
    tile: int,
    overlap: int,
    min_size: int = 1,
    batch: int = 1,
    multiple: int = 1,
) -> np.ndarray:
    """`run_tiled_streaming` on an NCHW float32 array held whole: the restored array."""
    n, c, h0, w0 = x.shape
    out: list[np.ndarray] = []

    def write(y0: int, band: np.ndarray) -> None:
        out.append(band)

    run_tiled_streaming(
        run,
        lambda rows, cols: x[:, :, rows][:, :, :, cols],
        write,
        h0,
        w0,
        scale=scale,
        tile=tile,
        overlap=overlap,
        min_size=min_size,
        batch=batch,
        multiple=multiple,
    )
    return np.concatenate(out, axis=2) if len(out) > 1 else out[0]
