"""Frozen causal-LM backbones: loading, caching, the default SmolLM2 alias and tiny random test models."""

from cllm4rec.backbone.hf import max_positions
from cllm4rec.backbone.loading import (
    ALIASES,
    DEFAULT_BACKBONE,
    BackboneRef,
    LoadedBackbone,
    backbone_ref_load,
    load_backbone,
)

__all__ = [
    "ALIASES",
    "DEFAULT_BACKBONE",
    "BackboneRef",
    "LoadedBackbone",
    "backbone_ref_load",
    "load_backbone",
    "max_positions",
]
