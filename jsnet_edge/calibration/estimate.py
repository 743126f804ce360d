"""What quantisation costs, estimated from held-out photographs so that it predicts the
loss on photographs nobody has seen: the mean over images, its spread, the worst image,
and the conservative bound that `--max-drop` is held to."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

# One-sided 90% bound of a mean from n samples (normal approximation): mean + z * sd / sqrt(n).
Z90 = 1.2816


@dataclass(frozen=True)
class LossEstimate:
    """PSNR lost (dB) per held-out photograph, and what they say about unseen ones."""

    per_image: dict[str, float]

    @property
    def n(self) -> int:
        return len(self.per_image)

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.per_image.values())))

    @property
    def spread(self) -> float:
        """Standard deviation over the photographs (0 for one)."""
        v = list(self.per_image.values())
        return float(np.std(v, ddof=1)) if len(v) > 1 else 0.0

    @property
    def worst(self) -> float:
        return max(self.per_image.values())

    @property
    def bound(self) -> float:
        """The 90% upper confidence bound of the mean loss over photographs of this kind:
        what `--max-drop` is held to. With one photograph, its loss (no spread to go on)."""
        return self.mean + Z90 * self.spread / math.sqrt(self.n)

    def describe(self) -> str:
        return (
            f"loss {self.mean:.3f} dB mean over {self.n} held-out photographs (spread "
            f"{self.spread:.3f}, worst {self.worst:.3f}; 90% bound {self.bound:.3f})"
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(n=self.n, mean=self.mean, spread=self.spread, worst=self.worst, bound=self.bound)
        return d


def estimate(reference: dict[str, float], quantised: dict[str, float]) -> LossEstimate:
    """Per-photograph loss from per-photograph PSNRs of the fp32 and the quantised model."""
    return LossEstimate({k: reference[k] - quantised[k] for k in reference})
