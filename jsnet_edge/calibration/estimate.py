"""What quantisation costs, estimated from held-out photographs so that it predicts the
loss on photographs nobody has seen: the mean over images, its spread, the worst image,
and the conservative figure that `--max-drop` is held to.

Which figure depends on where the held-out photographs come from. From the user's own
folder they are a sample of what the model will meet, so the 90% upper bound of their mean
is the right promise. Without a folder they are generic photographs (scikit-image's and the
bundled ones: textured, mid-PSNR), and the user's content may be unlike them; measured on
the authors' x2, unseen wallpapers (smooth skies at 45 dB, where int8 noise shows) lost
0.167 dB where that bound said 0.090. There the promise is the worst held-out photograph.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

# One-sided 90% bound of a mean from n samples (normal approximation): mean + z * sd / sqrt(n).
Z90 = 1.2816
RULES = {
    "bound": "the 90% upper confidence bound of the mean loss over the held-out photographs",
    "worst": "the worst held-out photograph (generic photographs: your content may differ)",
}


@dataclass(frozen=True)
class LossEstimate:
    """PSNR lost (dB) per held-out photograph, and what they say about unseen ones."""

    per_image: dict[str, float]
    rule: str = "bound"  # what `held` is: a key of RULES

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown estimate rule {self.rule!r}: one of {', '.join(RULES)}")

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

    @property
    def held(self) -> float:
        """The conservative figure `--max-drop` is held to (see the module docstring)."""
        return self.worst if self.rule == "worst" else self.bound

    def describe(self) -> str:
        return (
            f"loss {self.mean:.3f} dB mean over {self.n} held-out photographs (spread "
            f"{self.spread:.3f}, worst {self.worst:.3f}; 90% bound {self.bound:.3f})"
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(
            n=self.n,
            mean=self.mean,
            spread=self.spread,
            worst=self.worst,
            bound=self.bound,
            held=self.held,
        )
        return d


def estimate(
    reference: dict[str, float], quantised: dict[str, float], rule: str = "bound"
) -> LossEstimate:
    """Per-photograph loss from per-photograph PSNRs of the fp32 and the quantised model."""
    return LossEstimate({k: reference[k] - quantised[k] for k in reference}, rule)
