"""jsnet-edge: JSNet image restoration, from architecture search to edge deployment.

The top-level import is kept lean on purpose (no cv2, onnxruntime, openvino, tensorrt,
no GPU): heavy pieces load when they are first used.
"""

from __future__ import annotations

import jsnet_edge._started  # noqa: F401  (first: the time start-up counts from)
from jsnet_edge._version import __version__

__all__ = ["Restorer", "__version__"]


def __getattr__(name: str):
    # Lazy so that `import jsnet_edge` stays cheap and free of optional dependencies.
    if name == "Restorer":
        from jsnet_edge.restorer import Restorer

        return Restorer
    raise AttributeError(f"module 'jsnet_edge' has no attribute {name!r}")
