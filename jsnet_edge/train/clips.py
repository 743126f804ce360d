"""Training clips for recurrent (video) networks: short moving clips made from photographs,
and how such a network runs on a batch of them (`run_batch`).

A recurrent denoiser learns to use the frame before only where it shows the same scene: on
a pan it must follow the shift, where an object moves it must not drag the old one along
(ghosting), and on a still shot it can average the noise away over the frames. So each
clip is a window moving over a photograph (still one time in five, else a steady pan of up
to `MAX_PAN` pixels a frame, subpixel), and half of the clips carry an object (a piece of
another photograph, a soft-edged ellipse) moving on its own path. The degradation is drawn
once per clip and applied frame by frame with fresh noise (`degrade_clip`), as a camera
records it; camera noise's H.264 runs over the whole clip.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from jsnet_edge.degradations import Degradation, degrade_clip
from jsnet_edge.errors import OptionError
from jsnet_edge.models.network import JSNet
from jsnet_edge.motion import global_shift, shift_indices, thumbnail
from jsnet_edge.train.data import PatchSampler

MAX_PAN = 6.0  # pixels a frame, the window's speed at most
MAX_OBJECT_SPEED = 8.0  # pixels a frame
STILL = 0.2  # share of clips with a still window (a camera on a tripod)
WITH_OBJECT = 0.5  # share of clips with a moving object


def _window(img: np.ndarray, dx: float, dy: float, size: int) -> np.ndarray:
    """The size x size window of `img` whose top-left corner is at (dx, dy), bilinear."""
    m = np.float32([[1, 0, -dx], [0, 1, -dy]])
    out = cv2.warpAffine(
        img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    return out.reshape(size, size, -1)


class ClipSampler(PatchSampler):
    """Batches of (degraded clip, clean clip) as N x T x C x H x W float32 on 0..255.

    The same photographs, scales, seeding and prefetching as `PatchSampler` (batch `k` is
    the same whichever process makes it and whenever); `frames` frames a clip.
    """

    def __init__(
        self,
        folder: str | Path,
        degradation: Degradation,
        colors: int,
        patch: int,
        *,
        frames: int = 5,
        max_side: int | None = 2048,
        scales: tuple[float, ...] = (1.0,),
        seed: int = 0,
    ) -> None:
        if degradation.scale != 1:
            raise OptionError("recurrent networks are trained for x1 tasks (denoise, jpeg)")
        if frames < 2:
            raise OptionError(f"--clip-frames must be at least 2, got {frames}")
        if patch % 2:
            raise OptionError(f"clips need an even --patch (video is 4:2:0), got {patch}")
        self.frames = frames
        # photographs must hold the window and its path
        self.reach = int(np.ceil(MAX_PAN * (frames - 1)))
        super().__init__(
            folder,
            degradation,
            colors,
            patch + 2 * self.reach,
            max_side=max_side,
            scales=scales,
            seed=seed,
        )
        self.patch = patch

    def _one(self, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        rng = rng or self.rng
        p, t, reach = self.patch, self.frames, self.reach
        photo = self.targets[rng.choice(len(self.targets), p=self.weights)]
        h, w = photo.shape[:2]
        region = p + 2 * reach
        y0 = int(rng.integers(0, h - region + 1))
        x0 = int(rng.integers(0, w - region + 1))
        region_img = photo[y0 : y0 + region, x0 : x0 + region]
        if rng.random() < STILL:
            vx = vy = 0.0
        else:
            speed, angle = rng.uniform(0.5, MAX_PAN), rng.uniform(0, 2 * np.pi)
            vx, vy = speed * np.cos(angle), speed * np.sin(angle)
        # start so that the whole path stays inside the region
        sx, sy = reach - vx * (t - 1) / 2, reach - vy * (t - 1) / 2
        clean = [_window(region_img, sx + k * vx, sy + k * vy, p) for k in range(t)]
        if rng.random() < WITH_OBJECT:
            clean = self._with_object(clean, rng)
        noisy = degrade_clip(
            [c if c.shape[2] > 1 else c[:, :, 0] for c in clean], self.degradation, rng
        )
        k, flip = int(rng.integers(4)), bool(rng.integers(2))
        out = []
        for frames in (noisy, clean):
            arr = np.stack([f if f.ndim == 3 else f[:, :, None] for f in frames])  # T H W C
            arr = np.rot90(arr, k, axes=(1, 2))
            if flip:
                arr = arr[:, :, ::-1]
            out.append(np.ascontiguousarray(arr.transpose(0, 3, 1, 2), dtype=np.float32))
        return out[0], out[1]

    def _with_object(self, clean: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        """The clip with a soft-edged elliptical piece of another photograph moving over it."""
        p = self.patch
        size = int(rng.integers(p // 6, p // 2 + 1))
        other = self.targets[rng.choice(len(self.targets), p=self.weights)]
        oy = int(rng.integers(0, other.shape[0] - size + 1))
        ox = int(rng.integers(0, other.shape[1] - size + 1))
        piece = other[oy : oy + size, ox : ox + size].astype(np.float32)
        yy, xx = np.mgrid[:size, :size].astype(np.float32)
        r = (size - 1) / 2
        ell = ((xx - r) / (r + 0.5)) ** 2 + ((yy - r) / (r * rng.uniform(0.5, 1) + 0.5)) ** 2
        mask = np.clip((1 - ell) * size / 4, 0, 1)[:, :, None]  # a soft edge of a few pixels
        speed, angle = rng.uniform(1, MAX_OBJECT_SPEED), rng.uniform(0, 2 * np.pi)
        vx, vy = speed * np.cos(angle), speed * np.sin(angle)
        px, py = rng.uniform(-size / 2, p - size / 2), rng.uniform(-size / 2, p - size / 2)
        out = []
        for k, frame in enumerate(clean):
            m = np.float32([[1, 0, px + k * vx], [0, 1, py + k * vy]])
            obj = cv2.warpAffine(piece, m, (p, p), flags=cv2.INTER_LINEAR).reshape(p, p, -1)
            a = cv2.warpAffine(mask, m, (p, p), flags=cv2.INTER_LINEAR).reshape(p, p, 1)
            mixed = frame.astype(np.float32) * (1 - a) + obj * a
            out.append((mixed + 0.5).astype(np.uint8))
        return out


def _luma_thumbs(frames: torch.Tensor) -> list[tuple]:
    """`thumbnail`s of the luma of N x C x H x W frames (0..255)."""
    a = frames.detach().float().cpu().numpy()
    luma = a[:, 0] if a.shape[1] == 1 else 0.299 * a[:, 0] + 0.587 * a[:, 1] + 0.114 * a[:, 2]
    return [thumbnail(y) for y in luma]


def _moved(a: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """`jsnet_edge.motion.shifted` of one C x H x W tensor (the gradient flows)."""
    if not dx and not dy:
        return a
    rows, cols = (torch.from_numpy(i) for i in shift_indices(*a.shape[-2:], dx, dy))
    return a.index_select(-2, rows).index_select(-1, cols)


def run_batch(model: JSNet, x: torch.Tensor) -> torch.Tensor:
    """The model on a batch: N x C x H x W patches, or N x T x C x H x W clips for a
    recurrent model, run frame by frame as the video pipeline runs it: each output, moved
    by the camera's motion estimated from the noisy frames (`jsnet_edge.motion`), is the
    next frame's previous frame (the gradient flows through the whole clip)."""
    if x.ndim == 4:
        return model(x.contiguous(memory_format=torch.channels_last))
    outs, prev, thumbs = [], None, _luma_thumbs(x[:, 0])
    for k in range(x.shape[1]):
        frame = x[:, k].contiguous(memory_format=torch.channels_last)
        if prev is not None:
            cur = _luma_thumbs(x[:, k])
            moves = [global_shift(a, b) for a, b in zip(thumbs, cur, strict=True)]
            prev = torch.stack([_moved(p, *m) for p, m in zip(prev, moves, strict=True)])
            thumbs = cur
        out = model(frame, prev)
        outs.append(out)
        prev = out.clamp(0.0, 255.0)  # what the pipeline hands on: a frame
    return torch.stack(outs, 1)
