"""The cross-scale fusion module (CSFM, `cpam` in the authors' checkpoints)."""

from __future__ import annotations

import torch
from torch import nn

from jsnet_edge.models.attentions import ChannelAttention


class PAConv(nn.Module):
    """Pixel-attention convolution: a 3x3 conv gated by a sigmoid of a 1x1 conv."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.k2 = nn.Conv2d(width, width, 1)
        self.k3 = nn.Conv2d(width, width, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.k3(x) * torch.sigmoid(self.k2(x))


class CrossScaleFusion(nn.Module):
    """Two PA-conv stages whose outputs cross over through channel attentions.

    Halves the width (F -> F/2) before the upsampler.
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        w = features // 2
        self.process = nn.Conv2d(features, w, 1)
        self.pa_1 = PAConv(w)
        self.pa_2 = PAConv(w)
        self.ca_1_1 = ChannelAttention(w, r=16)
        self.ca_1_2 = ChannelAttention(w, r=16)
        self.ca_2_1 = ChannelAttention(w, r=16)
        self.ca_2_2 = ChannelAttention(w, r=16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.process(x)
        h = self.pa_1(x)
        p1 = self.ca_1_2(h) + x
        q1 = self.ca_1_1(x) + h
        g = self.pa_2(p1)
        p2 = self.ca_2_1(q1) + g
        q2 = self.ca_2_2(g) + q1
        return p2 + q2
