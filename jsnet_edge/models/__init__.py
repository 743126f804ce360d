"""JSNet: blocks, genotype, network, and the files it is stored in.

Lazy on purpose: importing a module of this package (say `models.fileinfo`, to read what a
model file is) does not import torch; the names below load their module when first used.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "ATTENTIONS": "jsnet_edge.models.attentions",
    "GENOTYPES": "jsnet_edge.models.genotype",
    "PAPER": "jsnet_edge.models.genotype",
    "Genotype": "jsnet_edge.models.genotype",
    "resolve_genotype": "jsnet_edge.models.genotype",
    "load_model": "jsnet_edge.models.modelfile",
    "save_model": "jsnet_edge.models.modelfile",
    "read_metadata": "jsnet_edge.models.fileinfo",
    "JSNet": "jsnet_edge.models.network",
    "load_official": "jsnet_edge.models.official",
    "OPS": "jsnet_edge.models.ops",
    "resolve_model": "jsnet_edge.models.resolve",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'jsnet_edge.models' has no attribute {name!r}")
