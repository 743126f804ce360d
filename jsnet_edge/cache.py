"""Where jsnet-edge keeps what it can recompute but should not have to: latency tables,
exported graphs, OpenVINO's compiled models. `$XDG_CACHE_HOME/jsnet-edge/` (by default
`~/.cache/jsnet-edge/`); `JSNET_EDGE_CACHE` moves it (an empty value turns caching off
where it is optional)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path


class CacheHealedWarning(UserWarning):
    """A damaged cache entry was found and is being recomputed (a one-line note)."""


def healed(what: str, path: Path, problem: str) -> None:
    """Say, in one line, that a damaged cache entry is recomputed; remove it."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass
    warnings.warn(
        f"the cached {what} {path} was damaged ({problem}); computing it again",
        CacheHealedWarning,
        stacklevel=3,
    )


def cache_dir(*parts: str) -> Path:
    own = os.environ.get("JSNET_EDGE_CACHE")
    if own is not None:
        base = Path(own) if own else None
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jsnet-edge"
    if base is None:
        raise LookupError("caching is off (JSNET_EDGE_CACHE is empty)")
    return base.joinpath(*parts)


def optional_cache_dir(*parts: str) -> Path | None:
    """`cache_dir(...)`, created, or None when caching is off or the folder cannot be made:
    a cache only saves time, so it never fails a run."""
    try:
        path = cache_dir(*parts)
        path.mkdir(parents=True, exist_ok=True)
    except (LookupError, OSError):
        return None
    return path if os.access(path, os.W_OK) else None
