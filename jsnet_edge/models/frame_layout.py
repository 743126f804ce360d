"""`FrameLayout`: which video frames a graph takes, as data (no torch: the runtime layer
keys its graph cache with it)."""

from __future__ import annotations

from dataclasses import dataclass

from jsnet_edge.errors import OptionError

# RGB -> limited-range Y'CbCr (16..235, 16..240): the luma weights (Kr, Kb) of each matrix.
KR_KB = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}
MATRICES = tuple(KR_KB)


@dataclass(frozen=True)
class FrameLayout:
    """Video frames a graph takes and gives: I420 of one size, in one colour matrix."""

    width: int
    height: int
    matrix: str = "bt601"

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2 or self.width < 2 or self.height < 2:
            raise OptionError(f"I420 frames have even sizes, not {self.width}x{self.height}")
        if self.matrix not in MATRICES:
            raise OptionError(f"unknown colour matrix {self.matrix!r}; choose from {MATRICES}")

    @property
    def key(self) -> str:
        return f"i420-{self.matrix}-{self.width}x{self.height}"

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """The graph's input: one frame."""
        return (1, 1, 3 * self.height // 2, self.width)


def i420_problem(
    unshuffle: int, colors: int, scale: int, min_size: int, layout: FrameLayout
) -> str | None:
    """Why a network (its unshuffle factor, colours, scale, smallest input) cannot run on
    I420 frames of `layout` (`jsnet_edge.models.frames`), or None."""
    if colors != 3 or scale != 1:
        return "I420 graphs are made from colour x1 networks (denoise, jpeg)"
    if unshuffle % 2:
        return "I420 graphs need a body unshuffled by an even factor (the real-time models)"
    if layout.width % unshuffle or layout.height % unshuffle:
        return f"frames of {layout.width}x{layout.height} are not multiples of {unshuffle}"
    if min(layout.width, layout.height) < min_size:
        return f"frames of {layout.width}x{layout.height} are below the network's smallest input"
    return None
