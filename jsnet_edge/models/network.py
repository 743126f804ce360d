"""JSNet, built from a genotype."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jsnet_edge.errors import OptionError
from jsnet_edge.models.attentions import ESAB
from jsnet_edge.models.cell import JointSearchCell
from jsnet_edge.models.csfm import CrossScaleFusion
from jsnet_edge.models.genotype import PAPER, Genotype
from jsnet_edge.models.tails import make_tail
from jsnet_edge.tasks import check_task, task_scale

# DIV2K mean (RGB) on the 0..255 scale, subtracted at the input as in the authors' code.
RGB_MEAN = (0.4488 * 255, 0.4371 * 255, 0.4040 * 255)


def restore_output(
    x: torch.Tensor, y: torch.Tensor, scale: int, anchored: bool, add_mean: nn.Module
) -> torch.Tensor:
    """The network output from its input x and its tail's y: x + y for x1 tasks; for SR, the
    paper's add_mean(y), or for anchored (unshuffled) networks y + a bilinear upscale of x.
    Tiny real-time networks learn the residual over an upscale far better than the whole
    image (as ABPN's anchor does); an untrained one upscales bilinearly."""
    if scale == 1:
        return x + y
    if anchored:
        return y + F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
    return add_mean(y)


def mean_shift(mean: tuple[float, ...], sign: int) -> nn.Conv2d:
    n = len(mean)
    layer = nn.Conv2d(n, n, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(n).view(n, n, 1, 1))
        layer.bias.copy_(sign * torch.tensor(mean))
    layer.requires_grad_(False)
    return layer


class JSNet(nn.Module):
    """JSNet for one task.

    Input and output are NCHW float tensors on the 0..255 scale (RGB or gray). SR tasks
    output `scale` times the input size; x1 tasks (denoise, jpeg) output the input plus a
    predicted residual.

    Args:
        genotype: the searched (or chosen) architecture.
        task: one of `jsnet_edge.tasks.TASKS`.
        colors: 1 (gray) or 3 (RGB) channels.
    """

    def __init__(self, genotype: Genotype = PAPER, task: str = "sr-x2", colors: int = 3) -> None:
        super().__init__()
        if colors not in (1, 3):
            raise OptionError(f"colors must be 1 or 3, got {colors}")
        self.genotype = genotype
        self.task = check_task(task)
        self.scale = task_scale(task)
        self.colors = colors
        self.provenance: dict = {}
        features = genotype.features
        mean = RGB_MEAN if colors == 3 else (sum(RGB_MEAN) / 3,)
        # Fixed 1x1 convolutions, as in the authors' code (whose released values are not
        # exactly the identity, so they are loaded rather than assumed). Never trained.
        self.sub_mean = mean_shift(mean, sign=-1)
        # x1 tasks add the input back instead (the output is input + residual).
        # Unshuffled SR networks (`anchored`) predict a residual over a bilinear upscale of
        # the input, as x1 tasks over the input itself (see `forward`).
        self.anchored = self.scale > 1 and genotype.unshuffle > 1
        self.add_mean = (
            mean_shift(mean, sign=+1) if self.scale > 1 and not self.anchored else nn.Identity()
        )
        s = genotype.unshuffle
        # Space to depth first when the body runs at 1/s resolution (a no-op for the paper).
        self.unshuffle = nn.PixelUnshuffle(s) if s > 1 else nn.Identity()
        # A recurrent network's head also reads the previous restored frame (see `forward`).
        frames = 2 if genotype.recurrent else 1
        self.head = nn.Conv2d(frames * colors * s * s, features, 3, padding=1)
        self.cells = nn.ModuleList(
            JointSearchCell(genotype.ops, genotype.attentions, genotype.width, genotype.nodes)
            for _ in range(genotype.cells)
        )
        self.fusion = nn.Conv2d(genotype.cells * features, features, 1)
        # The paper's cross-scale fusion, or (genotype.csfm False: real-time budgets) the
        # same width change as one 1x1 convolution.
        self.csfm = (
            CrossScaleFusion(features) if genotype.csfm else nn.Conv2d(features, features // 2, 1)
        )
        self.tail = make_tail(features // 2, colors, self.scale, s)
        if self.scale == 1 or self.anchored:
            # Start as the identity: an untrained x1 model returns its input unchanged
            # instead of adding a large random residual.
            nn.init.zeros_(self.tail[0].weight)
            nn.init.zeros_(self.tail[0].bias)

    @property
    def min_size(self) -> int:
        """Smallest input side the network accepts (ESAB's strided conv and pool)."""
        s = self.genotype.unshuffle
        return ESAB.MIN_SIZE * s if "esab" in self.genotype.attentions else s

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this (the unshuffle factor); the Restorer pads
        to it, as does this module in eager mode (exported graphs expect it done)."""
        return self.genotype.unshuffle

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:
        """Restore x; a recurrent network also reads `prev`, the previous restored frame
        (the same shape as x; None: x itself, as on a first frame or a still image)."""
        s = self.genotype.unshuffle
        h0, w0 = x.shape[-2:]
        if s > 1 and (h0 % s or w0 % s):
            pad = (0, -w0 % s, 0, -h0 % s)
            x = F.pad(x, pad, mode="replicate")
            prev = None if prev is None else F.pad(prev, pad, mode="replicate")
            return self.forward(x, prev)[..., : h0 * self.scale, : w0 * self.scale]
        z = self.unshuffle(self.sub_mean(x))
        if self.genotype.recurrent:
            z = torch.cat([z, z if prev is None else self.unshuffle(self.sub_mean(prev))], 1)
        h = self.head(z)
        y = self.tail(self.trunk(h))
        return restore_output(x, y, self.scale, self.anchored, self.add_mean)

    def trunk(self, h: torch.Tensor) -> torch.Tensor:
        """Everything between the head and the tail: the cells, their fusion (with the
        head's features added back) and the cross-scale fusion. Networks that read other
        inputs (video frames in I420) reuse it with their own head and tail."""
        outs = []
        c = h
        for cell in self.cells:
            c = cell(c)
            outs.append(c)
        f = self.fusion(torch.cat(outs, 1)) + h
        return self.csfm(f)

    def extra_repr(self) -> str:
        return f"task={self.task}, colors={self.colors}, genotype={self.genotype.to_string()}"
