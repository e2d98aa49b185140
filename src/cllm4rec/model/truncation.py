"""A view of a backbone that keeps only its first layers (``model.collab_layers``; docs/DESIGN.md §4).

The view shares every weight with the loaded backbone (nothing is copied, nothing in the original changes),
so a backbone shared by several models, or cached by the loader, keeps all its layers. It is an ordinary
causal LM of the same class: the decoder runs the first ``layers`` blocks and then the backbone's own final
norm, and ``generate`` (explanations) works on it as on the whole backbone.
"""

from __future__ import annotations

import copy

from torch import nn
from transformers import PreTrainedModel

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.model.checkpointing import decoder_layers


def backbone_depth(backbone: PreTrainedModel) -> int:
    """How many transformer blocks the backbone's decoder runs."""
    layers = decoder_layers(backbone.base_model)
    if layers is None:
        raise CLLM4RecError(f"cannot find the layer stack of a {type(backbone).__name__} backbone")
    return len(layers)


def _shallow(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with its own child, parameter and buffer dicts (the children themselves shared)."""
    view = copy.copy(module)
    view._modules = dict(module._modules)
    view._parameters = dict(module._parameters)
    view._buffers = dict(module._buffers)
    return view


def truncated(backbone: PreTrainedModel, layers: int) -> PreTrainedModel:
    """``backbone`` running only its first ``layers`` blocks (0, or its own depth, returns it unchanged)."""
    depth = backbone_depth(backbone)
    if layers < 0 or layers > depth:
        raise CLLM4RecError(
            f"model.collab_layers must be in [0, {depth}] for this backbone (got {layers}; 0 keeps all)"
        )
    if layers in (0, depth):
        return backbone
    config = copy.deepcopy(backbone.config)
    config.num_hidden_layers = layers
    if isinstance(getattr(config, "layer_types", None), list):
        config.layer_types = config.layer_types[:layers]
    decoder = _shallow(backbone.base_model)
    stack = decoder_layers(backbone.base_model)
    name = next(key for key, child in decoder._modules.items() if child is stack)
    decoder._modules[name] = nn.ModuleList(list(stack)[:layers])
    decoder.config = config
    view = _shallow(backbone)
    view._modules[backbone.base_model_prefix] = decoder
    view.config = config
    return view
