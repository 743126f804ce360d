"""Hardware-aware architecture search: a supernet over JSNet's operations, attentions, widths
and depths, a measured latency table of the target device and backend, and a search that
keeps its latency budget by measuring the network it returns.

Nothing here imports onnxruntime, openvino or tensorrt at import time.
"""

from __future__ import annotations

from jsnet_edge.runtime.timing import TimingMethod
from jsnet_edge.search.budget import fit_to_budget
from jsnet_edge.search.config import SearchConfig, parse_budget, parse_budgets
from jsnet_edge.search.latency import ExpectedLatency, LatencyTable, LatencyTableError
from jsnet_edge.search.profile import ProfileConfig, profile, validate
from jsnet_edge.search.report import SearchResult
from jsnet_edge.search.search import search
from jsnet_edge.search.space import SearchSpace
from jsnet_edge.search.supernet import SuperNet
from jsnet_edge.search.timing import time_block, time_network

__all__ = [
    "ExpectedLatency",
    "LatencyTable",
    "LatencyTableError",
    "ProfileConfig",
    "SearchConfig",
    "SearchResult",
    "SearchSpace",
    "SuperNet",
    "TimingMethod",
    "fit_to_budget",
    "parse_budget",
    "parse_budgets",
    "profile",
    "search",
    "time_block",
    "time_network",
    "validate",
]
