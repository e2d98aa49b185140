"""Activation checkpointing of the frozen backbone's layers, switched on per batch (docs/DESIGN.md §2).

Only the ID tables train, but their gradient flows back through every backbone layer, so autograd keeps
each layer's activations: measured, 4.2 GiB for a batch of 20 documents of 256 tokens on SmolLM2 under bf16
autocast (about 29 KB per token and layer; docs/BENCHMARKS.md, "Peak memory"). Under :func:`checkpointed`,
each layer keeps only its input and recomputes its activations during the backward pass
(``torch.utils.checkpoint``, non-reentrant). The backbone is in eval mode (no dropout), so the recomputation
is exact and the gradients are the same as without it; the price is one more forward pass of the backbone
per training step.

The wrapper is installed once on a backbone's layer instances (the forward of each layer object, not of its
class), and it does nothing unless the flag is on, so a backbone shared by several models or used for
inference is unaffected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

_WRAPPED = "_cllm4rec_checkpointable"
_ACTIVE = "_cllm4rec_checkpoint_active"


def decoder_layers(decoder: nn.Module) -> nn.ModuleList | None:
    """The stack of transformer blocks of a decoder (``layers`` in Llama-style models, ``h`` in GPT-2): the
    longest ``ModuleList`` among its direct children; None if it has none."""
    lists = [m for m in decoder.children() if isinstance(m, nn.ModuleList)]
    return max(lists, key=len) if lists else None


def _wrap(layer: nn.Module) -> None:
    forward: Callable[..., Any] = layer.forward

    def run(*args: Any, **kwargs: Any) -> Any:
        if getattr(layer, _ACTIVE, False) and torch.is_grad_enabled():
            return checkpoint(forward, *args, use_reentrant=False, **kwargs)
        return forward(*args, **kwargs)

    layer.forward = run  # type: ignore[method-assign]
    setattr(layer, _WRAPPED, True)


@contextmanager
def checkpointed(decoder: nn.Module, active: bool = True) -> Iterator[None]:
    """Inside the block, the decoder's layers recompute their activations in the backward pass (when
    ``active``; a decoder without a layer list runs as usual)."""
    layers = decoder_layers(decoder) if active else None
    if layers is None:
        yield
        return
    for layer in layers:
        if not getattr(layer, _WRAPPED, False):
            _wrap(layer)
        setattr(layer, _ACTIVE, True)
    try:
        yield
    finally:
        for layer in layers:
            setattr(layer, _ACTIVE, False)
