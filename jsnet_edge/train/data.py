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


def _scaled(img: np.ndarray, factor: float) -> np.ndarray:
    h, w = img.shape[:2]
    return imresize(img, size=(max(1, round(h * factor)), max(1, round(w * factor))))


class PatchSampler:
    """Batches of (degraded input, clean target) patches as NCHW float32 on 0..255.

    Args:
        folder: a folder of photographs.
        degradation: what is done to each clean patch (ranges make blind models).
        colors: 1 or 3.
        patch: side of the *target* patch (SR inputs are patch / scale).
        max_side: photographs larger than this are first downscaled (bicubic), which keeps
            the cache small and makes very large wallpapers look like DIV2K-sized photos.
        scales: each photograph is also used downscaled by these factors (1 is the photo
            itself), each scale drawn as often as the others: large photographs are smooth
            at the pixel level, and a model trained on them alone meets more detail per
            pixel in use than it learnt (multi-scale training, as DIV2K pipelines do).
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
        scales: tuple[float, ...] = (1.0,),
        seed: int = 0,
    ) -> None:
        self.degradation = degradation
        self.scale = degradation.scale
        if patch % self.scale:
            raise OptionError(f"--patch {patch} must be a multiple of the scale {self.scale}")
        self.patch = patch
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        paths = list_images(folder)
        if not paths:
            raise OptionError(f"training folder {folder} holds no images")
        self.names = [p.name for p in paths]
        if not scales or any(not 0 < f <= 1 for f in scales):
            raise OptionError(f"--scales must be factors in (0, 1], got {scales}")
        self.targets: list[np.ndarray] = []
        self.inputs: list[np.ndarray] = []
        level: list[int] = []  # which scale each target is
        for p in paths:
            photo = _fit(prepare_clean(load_image(p), colors), max_side)
            for k, f in enumerate(scales):
                clean = photo if f == 1 else _scaled(photo, f)
                if min(clean.shape[:2]) < patch:
                    continue
                if self.scale > 1:  # deterministic: degrade the whole photograph once
                    clean = modcrop(clean, self.scale)
                    self.inputs.append(degradation.apply(clean, self.rng))
                self.targets.append(clean if clean.ndim == 3 else clean[:, :, None])
                level.append(k)
        if not self.targets:
            raise OptionError(f"no image in {folder} is at least {patch} pixels on each side")
        if self.inputs:
            self.inputs = [a if a.ndim == 3 else a[:, :, None] for a in self.inputs]
        # Larger photographs give proportionally more patches; each scale as many as another.
        area = np.array([t.shape[0] * t.shape[1] for t in self.targets], np.float64)
        levels = np.array(level)
        for k in set(level):
            area[levels == k] /= area[levels == k].sum()
        self.weights = area / area.sum()

    def __len__(self) -> int:
        return len(self.targets)

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def _one(self, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        rng = rng or self.rng
        s, p = self.scale, self.patch
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
        """The next batch of this sampler's own random stream (see `state`)."""
        pairs = [self._one() for _ in range(size)]
        return np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs])

    def batch_at(self, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch number `index`, the same whichever process makes it and whenever: what
        worker processes prefetch, and what a resumed run continues from."""
        rng = np.random.default_rng([self.seed, index])
        pairs = [self._one(rng) for _ in range(size)]
        return np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs])

    def stream(self, start: int, size: int, workers: int = 0):
        """Batches `start`, `start + 1` ... (`batch_at`), made `workers` processes ahead of
        the consumer where workers > 0 (degradations such as H.264 encodes cost as much
        as a training step of a small network: a second core keeps them off its path)."""
        if workers <= 0:
            index = start
            while True:
                yield self.batch_at(index, size)
                index += 1
        import multiprocessing as mp
        from collections import deque

        ctx = mp.get_context("fork")  # the workers share the cached photographs
        with ctx.Pool(workers, initializer=_serve, initargs=(self,)) as pool:
            pending: deque = deque()
            index = start
            while True:
                while len(pending) < 2 * workers:  # a few batches ahead, no more
                    pending.append(pool.apply_async(_batch_job, ((index, size),)))
                    index += 1
                yield pending.popleft().get()


_SAMPLER: PatchSampler | None = None  # in a prefetch worker process: the sampler it serves


def _serve(sampler: PatchSampler) -> None:
    global _SAMPLER
    _SAMPLER = sampler


def _batch_job(job: tuple[int, int]):
    index, size = job
    return _SAMPLER.batch_at(index, size)
