"""Real-time video restoration: decode, restore and encode in overlapping threads.

Lazy on purpose: `import jsnet_edge.video` loads neither OpenCV nor PyAV; they load when
a function that needs them is first used. (`stream` is imported now: it needs only numpy,
and it shares its name with its module, which would otherwise shadow it.)
"""

from __future__ import annotations

from jsnet_edge.video.stream import stream

__all__ = [
    "IncompleteVideoError",
    "VideoError",
    "VideoStats",
    "make_sample_clip",
    "process",
    "stream",
]

_WHERE = {
    "process": "jsnet_edge.video.pipeline",
    "VideoStats": "jsnet_edge.video.pipeline",
    "make_sample_clip": "jsnet_edge.video.sample",
    "VideoError": "jsnet_edge.video.errors",
    "IncompleteVideoError": "jsnet_edge.video.errors",
}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'jsnet_edge.video' has no attribute {name!r}")
