"""Training patches: random crops of cached photographs, degraded on the fly.

The degradation is the one `jsnet-edge eval` and calibration apply (`Degradation`), so a
model learns exactly what it is measured on. Decoded images (and, for SR, their bicubic
downscales, which are deterministic) are cached in memory; cropping, flips, rotations,
noise and JPEG happen per patch with a seeded generator, so a run is reproducible and
resumable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jsnet_edge.degradations import Degradation, imresize, modcrop
from jsnet_edge.errors import OptionError
from jsnet_edge.images import list_images, load_image, prepare_clean


def _fit(img: np.ndarray, max_side: int | None) -> np.ndarray:
    if max_side is None or max(img.shape[:2]) <= max_side:
        return img
    factor = max_side / max(img.shape[:2])
    h, w = round(img.shape[0] * factor), round(img.shape[1] * factor)
    return imresize(img, size=(h, w))


class PatchSampler:
    """Batches of (degraded input, clean target) patches as NCHW float32 on 0..255.

    Args:
        folder: a folder of photographs.
        degradation: what is done to each clean patch (ranges make blind models).
        colors: 1 or 3.
        patch: side of the *target* patch (SR inputs are patch / scale).
        max_side: photographs larger than this are first downscaled (bicubic), which keeps
            the cache small and makes very large wallpapers look like DIV2K-sized photos.
        seed: seeds the crops, flips and degradations.
    """

    def __init__(
        self,
        folder: str | Path,
        degradation: Degradation,
        colors: int,
        patch: int,
        *,
        max_side: int | None = 2048,
        seed: int = 0,
    ) -> None:
        self.degradation = degradation
        self.scale = degradation.scale
        if patch % self.scale:
            raise OptionError(f"--patch {patch} must be a multiple of the scale {self.scale}")
        self.patch = patch
        self.rng = np.random.default_rng(seed)
        paths = list_images(folder)
        if not paths:
            raise OptionError(f"training folder {folder} holds no images")
        self.names = [p.name for p in paths]
        self.targets: list[np.ndarray] = []
        self.inputs: list[np.ndarray] = []
        for p in paths:
            clean = _fit(prepare_clean(load_image(p), colors), max_side)
            if min(clean.shape[:2]) < patch:
                continue
            if self.scale > 1:  # deterministic: degrade the whole photograph once
                clean = modcrop(clean, self.scale)
                self.inputs.append(degradation.apply(clean, self.rng))
            self.targets.append(clean if clean.ndim == 3 else clean[:, :, None])
        if not self.targets:
            raise OptionError(f"no image in {folder} is at least {patch} pixels on each side")
        if self.inputs:
            self.inputs = [a if a.ndim == 3 else a[:, :, None] for a in self.inputs]
        # Larger photographs give proportionally more patches.
        area = np.array([t.shape[0] * t.shape[1] for t in self.targets], np.float64)
        self.weights = area / area.sum()

    def __len__(self) -> int:
        return len(self.targets)

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def _one(self) -> tuple[np.ndarray, np.ndarray]:
        rng, s, p = self.rng, self.scale, self.patch
        i = rng.choice(len(self.targets), p=self.weights)
        target = self.targets[i]
        h, w = target.shape[:2]
        y = int(rng.integers(0, (h - p) // s + 1)) * s
        x = int(rng.integers(0, (w - p) // s + 1)) * s
        tgt = target[y : y + p, x : x + p]
        if s > 1:
            inp = self.inputs[i][y // s : (y + p) // s, x // s : (x + p) // s]
        else:
            inp = self.degradation.apply(tgt, rng)
            inp = inp if inp.ndim == 3 else inp[:, :, None]
        k, flip = int(rng.integers(4)), bool(rng.integers(2))
        out = []
        for a in (inp, tgt):
            a = np.rot90(a, k)
            if flip:
                a = a[:, ::-1]
            out.append(np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32))
        return out[0], out[1]

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        pairs = [self._one() for _ in range(size)]
        return np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs])
