"""A real-time denoiser on video frames in their own layout: planar YUV 4:2:0 (I420).

Decoders hand out 4:2:0 frames and encoders take them. Converting every frame to RGB and
back outside the network costs a video pipeline more than a small network does (FFmpeg's
scaler both ways plus float conversions and transposes), and restores at full resolution
the chroma the camera already threw away.

A network whose body runs unshuffled by an even factor s (the zoo's real-time models)
needs no RGB at all: with chroma repeated over each 2x2 block (nearest upsampling), RGB is
a per-pixel linear map of (Y, U, V), so the head's first convolution over the unshuffled
RGB channels equals one convolution over Y unshuffled by s and U, V unshuffled by s/2.
The tail's RGB correction maps back the same way: luma per subpixel, chroma averaged over
each 2x2 block. `I420Frames` folds both colour matrices into the head and tail weights, so
it is the same network (the same trunk modules), reading s^2 + s^2/2 channels instead of
3 s^2 and writing as many: cheaper than the RGB network, with no conversion anywhere.

The correction is added to the frame's own planes, so an untouched region keeps its exact
samples. Output samples are clamped to 0..255 and rounded (the 8-bit frame, as floats).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jsnet_edge.errors import OptionError
from jsnet_edge.models.frame_layout import KR_KB, FrameLayout, i420_problem

OFFSET = (16.0, 128.0, 128.0)  # limited-range Y, Cb, Cr of black


def yuv_matrix(matrix: str) -> torch.Tensor:
    """3x3 (float64): RGB on 0..255 -> (Y - 16, Cb - 128, Cr - 128), limited range."""
    kr, kb = KR_KB[matrix]
    kg = 1.0 - kr - kb
    y = torch.tensor([kr, kg, kb], dtype=torch.float64)
    cb = (torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64) - y) / (2 * (1 - kb))
    cr = (torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64) - y) / (2 * (1 - kr))
    return torch.stack([y * 219 / 255, cb * 224 / 255, cr * 224 / 255])


def _blocks(w: torch.Tensor, s: int, reduce: str) -> torch.Tensor:
    """(out, s, s, ...) over luma subpixels -> (out, (s/2)^2, ...) over chroma subpixels,
    each the sum or mean of the 2x2 luma subpixels it covers."""
    t = s // 2
    v = w.reshape(w.shape[0], t, 2, t, 2, *w.shape[3:])
    v = v.sum((2, 4)) if reduce == "sum" else v.mean((2, 4))
    return v.reshape(w.shape[0], t * t, *w.shape[3:])


class I420Frames(nn.Module):
    """A colour x1 JSNet (body unshuffled by an even s) on I420 frames of one size.

    Input (N, 1, 3H/2, W) and output the same, floats on 0..255: FFmpeg's packed I420
    array (H rows of Y, then U and V one after the other). A recurrent network takes
    (N, 2, 3H/2, W): the frame, then the previous restored frame (`shape`).
    """

    def __init__(self, net: nn.Module, layout: FrameLayout) -> None:
        super().__init__()
        problem = i420_problem(net.genotype.unshuffle, net.colors, net.scale, net.min_size, layout)
        if problem:
            raise OptionError(problem)
        s = net.genotype.unshuffle
        self.s, self.t, self.width, self.height = s, s // 2, layout.width, layout.height
        self.net = net  # its trunk runs as it is
        m = yuv_matrix(layout.matrix)
        rgb_of_yuv = torch.linalg.inv(m)
        with torch.no_grad():
            # head input, per colour: Ws RGB + bs, RGB = m^-1 (yuv - offset): = A z with
            # z = yuv + shift (a shift, not a bias: zero padding stays exact).
            ws = net.sub_mean.weight[:, :, 0, 0].double()
            bs = net.sub_mean.bias.double()
            a = ws @ rgb_of_yuv
            shift = torch.linalg.solve(a, bs) - torch.tensor(OFFSET, dtype=torch.float64)
            self.register_buffer("shift", shift.float())
            wh = net.head.weight.double()
            f, _, kh, kw = wh.shape
            self.frames = 2 if net.genotype.recurrent else 1  # + the previous restored frame
            wh = wh.reshape(f, self.frames, 3, s, s, kh, kw)
            parts = []
            for n in range(self.frames):
                per = [torch.einsum("fcijkl,c->fijkl", wh[:, n], a[:, k]) for k in range(3)]
                parts += [
                    per[0].reshape(f, s * s, kh, kw),
                    _blocks(per[1].reshape(f, s, s, kh, kw), s, "sum"),
                    _blocks(per[2].reshape(f, s, s, kh, kw), s, "sum"),
                ]
            head = torch.cat(parts, 1)
            self.head = nn.Conv2d(head.shape[1], f, (kh, kw), padding=net.head.padding)
            self.head.weight.copy_(head.float())
            self.head.bias.copy_(net.head.bias)
            # tail: RGB correction per subpixel -> Y per subpixel, U and V per 2x2 block
            conv = net.tail[0]
            wt, bt = conv.weight.double(), conv.bias.double()
            fin, kh, kw = wt.shape[1:]
            wt, bt = wt.reshape(3, s, s, fin, kh, kw), bt.reshape(3, s, s)
            outs, biases = [], []
            for k in range(3):
                w_k = torch.einsum("cij...,c->ij...", wt, m[k]).unsqueeze(0)
                b_k = torch.einsum("cij,c->ij", bt, m[k]).unsqueeze(0)
                if k == 0:
                    outs.append(w_k.reshape(s * s, fin, kh, kw))
                    biases.append(b_k.reshape(s * s))
                else:
                    outs.append(_blocks(w_k, s, "mean").reshape(self.t**2, fin, kh, kw))
                    biases.append(_blocks(b_k, s, "mean").reshape(self.t**2))
            tail = torch.cat(outs)
            self.tail = nn.Conv2d(fin, tail.shape[0], (kh, kw), padding=conv.padding)
            self.tail.weight.copy_(tail.float())
            self.tail.bias.copy_(torch.cat(biases).float())

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """The graph's input: one frame, and a recurrent network's previous restored frame
        stacked after it as a second channel."""
        return (1, self.frames, 3 * self.height // 2, self.width)

    def _planes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Y, UV as 2 channels, the head's input for them) of (N, 1, 3H/2, W) frames."""
        n, h, w, s, t = x.shape[0], self.height, self.width, self.s, self.t
        y = x[:, :, :h]
        uv = x[:, :, h:].reshape(n, 2, h // 2, w // 2)
        zy = F.pixel_unshuffle(y + self.shift[0], s)
        zuv = uv + self.shift[1:].view(1, 2, 1, 1)
        if t > 1:
            zuv = F.pixel_unshuffle(zuv, t)
        return y, uv, torch.cat([zy, zuv], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w, s, t = x.shape[0], self.height, self.width, self.s, self.t
        y, uv, z = self._planes(x[:, :1])
        if self.frames > 1:
            z = torch.cat([z, self._planes(x[:, 1:2])[2]], 1)
        d = self.tail(self.net.trunk(self.head(z)))
        dy = F.pixel_shuffle(d[:, : s * s], s)
        duv = d[:, s * s :]
        if t > 1:
            duv = F.pixel_shuffle(duv, t)
        out = torch.cat([y + dy, (uv + duv).reshape(n, 1, h // 2, w)], 2)
        return torch.round(out.clamp(0.0, 255.0))
