"""A colour network on video frames in their own layout: planar YUV 4:2:0 (I420).

Decoders hand out 4:2:0 frames and encoders take them. Converting every frame to RGB and
back outside the network costs a video pipeline more than a small network does (at 720p
on two cores: FFmpeg's scaler both ways plus the float conversions, about 13 ms a frame),
and the chroma the camera already threw away is then restored at full resolution for
nothing. `I420Frames` puts the conversion inside the exported graph, where the runtime
fuses it with the network's own first and last layers:

    I420 (N, 1, 3H/2, W) -> Y, and U, V at half size -> RGB (chroma upsampled bilinearly)
    -> the network -> its correction back to YUV, chroma averaged over 2x2 -> I420

For x1 tasks the network's correction (output - input, in YUV) is added to the frame's
own planes, so that an unchanged region keeps its exact samples and chroma is never
blurred by the up-then-down round trip. Samples are clamped to 0..255 and rounded: the
output is the 8-bit frame, as floats.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jsnet_edge.models.frame_layout import KR_KB, FrameLayout


def yuv_matrix(matrix: str) -> torch.Tensor:
    """3x3: RGB on 0..255 -> (Y - 16, Cb - 128, Cr - 128), limited range."""
    kr, kb = KR_KB[matrix]
    kg = 1.0 - kr - kb
    y = torch.tensor([kr, kg, kb], dtype=torch.float64)
    cb = (torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64) - y) / (2 * (1 - kb))
    cr = (torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64) - y) / (2 * (1 - kr))
    return torch.stack([y * 219 / 255, cb * 224 / 255, cr * 224 / 255])


class I420Frames(nn.Module):
    """`net` (RGB, NCHW, 0..255) on I420 frames of one size (W, H), both even.

    Input (N, 1, 3H/2, W) and output (N, 1, 3sH/2, sW) float on 0..255, s the network's
    scale: the I420 planes stacked as FFmpeg lays them out (Y rows, then U, then V, each
    chroma plane's rows packed two to a row of the array).
    """

    def __init__(self, net: nn.Module, layout: FrameLayout) -> None:
        super().__init__()
        self.net, self.width, self.height = net, layout.width, layout.height
        self.scale = int(getattr(net, "scale", 1))
        m = yuv_matrix(layout.matrix)
        self.register_buffer("to_yuv", m.float().view(3, 3, 1, 1))
        self.register_buffer("to_rgb", torch.linalg.inv(m).float().view(3, 3, 1, 1))
        self.register_buffer("offset", torch.tensor([16.0, 128.0, 128.0]).view(1, 3, 1, 1))

    def split(self, x: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Y (N, 1, h, w) and U, V stacked (N, 2, h/2, w/2) from FFmpeg's packed I420
        array: h rows of Y, then U and V one after the other (a plane ends mid-row when
        h/2 is odd)."""
        n = x.shape[0]
        chroma = x[:, :, h:].reshape(n, 2, h // 2, w // 2)
        return x[:, :, :h], chroma

    @staticmethod
    def pack(y: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
        n, _, h, w = y.shape
        return torch.cat([y, uv.reshape(n, 1, h // 2, w)], 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w, s = self.height, self.width, self.scale
        y, uv = self.split(x, h, w)
        full = F.interpolate(uv, scale_factor=2.0, mode="bilinear", align_corners=False)
        rgb = F.conv2d(torch.cat([y, full], 1) - self.offset, self.to_rgb).clamp(0.0, 255.0)
        out = self.net(rgb)
        if s == 1:  # the correction only: untouched samples stay exactly as decoded
            d = F.conv2d(out - rgb, self.to_yuv)
            y2, uv2 = y + d[:, :1], uv + F.avg_pool2d(d[:, 1:], 2)
        else:
            d = F.conv2d(out, self.to_yuv) + self.offset
            y2, uv2 = d[:, :1], F.avg_pool2d(d[:, 1:], 2)
        return torch.round(self.pack(y2, uv2).clamp(0.0, 255.0))
