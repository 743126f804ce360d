"""JSNet: blocks, genotype, network, and the files it is stored in."""

from __future__ import annotations

from jsnet_edge.models.attentions import ATTENTIONS
from jsnet_edge.models.genotype import GENOTYPES, PAPER, Genotype, resolve_genotype
from jsnet_edge.models.modelfile import load_model, read_metadata, save_model
from jsnet_edge.models.network import JSNet
from jsnet_edge.models.official import load_official
from jsnet_edge.models.ops import OPS
from jsnet_edge.models.resolve import resolve_model

__all__ = [
    "ATTENTIONS",
    "GENOTYPES",
    "OPS",
    "PAPER",
    "Genotype",
    "JSNet",
    "load_model",
    "load_official",
    "read_metadata",
    "resolve_genotype",
    "resolve_model",
    "save_model",
]
