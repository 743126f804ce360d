"""Real-time video restoration: decode, restore and encode in overlapping threads.

Lazy on purpose: `import jsnet_edge.video` loads neither OpenCV nor PyAV nor a runtime;
they load when a name that needs them is first used.
"""

from __future__ import annotations

import importlib

__all__ = [
    "IncompleteVideoError",
    "VideoConfig",
    "VideoError",
    "VideoStats",
    "make_sample_clip",
    "process",
    "stream",
]

_WHERE = {
    "process": "jsnet_edge.video.pipeline",
    "VideoConfig": "jsnet_edge.video.config",
    "VideoStats": "jsnet_edge.video.stats",
    "make_sample_clip": "jsnet_edge.video.sample",
    "VideoError": "jsnet_edge.video.errors",
    "IncompleteVideoError": "jsnet_edge.video.errors",
    "stream": "jsnet_edge.restorer",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'jsnet_edge.video' has no attribute {name!r}")
