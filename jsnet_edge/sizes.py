"""Image and video sizes as users write them: '640x360' is (width, height)."""

from __future__ import annotations

from jsnet_edge.errors import OptionError

MAX_SIDE = 16384  # a side beyond this is a typo or hostile: 100000x100000 is 30 GB a frame


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'640x360' -> (W, H); None stays None."""
    if text is None:
        return None
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise OptionError(f"sizes are given as WxH, e.g. 640x360; got {text!r}") from None
    if w < 1 or h < 1:
        raise OptionError(f"sizes must be positive, got {text!r}")
    if max(w, h) > MAX_SIDE:
        raise OptionError(f"sizes are at most {MAX_SIDE} pixels a side, got {text!r}")
    return w, h
