"""Overlapping tiles, so that any image size runs in bounded memory.

Tiles all have the same size (the last one of a row or column is moved back inside the
image), which suits backends with fixed or profiled shapes (TensorRT, OpenVINO). Their
outputs are blended with weights that ramp linearly across the overlap, so seams vanish
even though JSNet's channel attentions see slightly different statistics per tile.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from jsnet_edge.errors import OptionError

Run = Callable[[np.ndarray], np.ndarray]


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


def pad_to_min(x: np.ndarray, min_size: int, multiple: int = 1) -> np.ndarray:
    """Mirror-pad the bottom/right of an NCHW array so both sides reach `min_size` and are
    multiples of `multiple`."""
    h, w = x.shape[2:]
    ph, pw = max(0, min_size - h), max(0, min_size - w)
    ph, pw = ph + -(h + ph) % multiple, pw + -(w + pw) % multiple
    if not ph and not pw:
        return x
    # Mirror padding needs the pad to be shorter than the side; edge padding otherwise.
    mode = "reflect" if ph < h and pw < w else "edge"
    return np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode=mode)


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
    """Apply `run` (NCHW -> NCHW, `scale` times larger) to `x` tile by tile.

    Args:
        run: a backend call.
        x: N x C x H x W float32.
        scale: output scale of the network.
        tile: largest tile side, in input pixels; images that fit run in one piece.
        overlap: input pixels shared by neighbouring tiles.
        min_size: smallest side the network accepts; smaller inputs are padded.
        batch: tiles per call (more is faster on GPUs, costs memory).
        multiple: input sides the network needs to be multiples of (its unshuffle factor);
            inputs are padded and tiles placed on that grid.
    """
    if tile < max(min_size, 8):
        raise OptionError(
            f"tile size {tile} is too small; this network needs at least {max(min_size, 8)} pixels"
        )
    if not 0 <= overlap < tile // 2:
        raise OptionError(
            f"tile overlap must be between 0 and half the tile ({tile // 2 - 1}), got {overlap}"
        )
    if multiple > 1:  # tiles on the grid: size and overlap multiples, so are their starts
        tile -= tile % multiple
        overlap = min(
            -(-overlap // multiple) * multiple, max(0, (tile // 2 - 1) // multiple * multiple)
        )
    n, c, h0, w0 = x.shape
    x = pad_to_min(x, min_size, multiple)
    h, w = x.shape[2:]
    if h <= tile and w <= tile:
        return run(x)[:, :, : h0 * scale, : w0 * scale]
    th, tw = min(tile, h), min(tile, w)
    ys, xs = tile_starts(h, th, overlap), tile_starts(w, tw, overlap)
    out = None
    weight = np.zeros((h * scale, w * scale), np.float32)
    boxes = [(y, xx) for y in ys for xx in xs]
    for i in range(0, len(boxes), batch):
        group = boxes[i : i + batch]
        crops = np.concatenate([x[:, :, y : y + th, xx : xx + tw] for y, xx in group], 0)
        res = run(crops)
        if out is None:
            out = np.zeros((n, res.shape[1], h * scale, w * scale), np.float32)
        for j, (y, xx) in enumerate(group):
            wy = _ramp(th * scale, overlap * scale, y > 0, y + th < h)
            wx = _ramp(tw * scale, overlap * scale, xx > 0, xx + tw < w)
            wt = wy[:, None] * wx[None, :]
            sl = (slice(y * scale, (y + th) * scale), slice(xx * scale, (xx + tw) * scale))
            out[:, :, sl[0], sl[1]] += res[j * n : (j + 1) * n] * wt
            weight[sl] += wt
    assert out is not None
    out /= weight
    return out[:, :, : h0 * scale, : w0 * scale]
