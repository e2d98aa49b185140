"""Activation checkpointing of the backbone: same losses and gradients, far fewer saved activations."""

from __future__ import annotations

import pytest
import torch

from cllm4rec.backbone import LoadedBackbone
from cllm4rec.model import CLLM4Rec
from cllm4rec.model.checkpointing import decoder_layers
from cllm4rec.tokenization import collate

N_USERS, N_ITEMS = 4, 20


def _batch(backbone: LoadedBackbone):
    tok = backbone.id_tokenizer(N_USERS, N_ITEMS)
    histories = [[1, 2, 3, 4, 5, 6, 7], [8, 9], [10, 11, 12, 13, 0]]
    return collate(
        [(tok.encode(f"user_{u} has interacted with"), tok.item_tokens(h)) for u, h in enumerate(histories)], tok.pad_id
    )


def _step(model: CLLM4Rec, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
    """Loss, gradients and the bytes autograd saved for the backward pass."""
    saved = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += t.numel() * t.element_size()
        return t

    model.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model.item_lm_loss(batch, target="rest").loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, saved


def test_checkpointing_keeps_gradients_and_saves_memory(tiny_backbone: LoadedBackbone) -> None:
    model = CLLM4Rec(tiny_backbone, N_USERS, N_ITEMS, seed=0, item_bias=True)
    model.autocast = False
    model.train()
    layers = decoder_layers(model.decoder)
    assert layers is not None and len(layers) == model.backbone.config.num_hidden_layers
    batch = _batch(tiny_backbone)
    model.checkpoint_tokens = 1 << 30  # never
    ref_loss, ref_grads, ref_saved = _step(model, batch)
    model.checkpoint_tokens = 0  # always
    loss, grads, saved = _step(model, batch)
    torch.testing.assert_close(loss, ref_loss, rtol=0, atol=0)
    assert set(grads) == set(ref_grads)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_grads[name], rtol=1e-6, atol=1e-7, msg=name)
    assert saved < 0.5 * ref_saved, (saved, ref_saved)
    # the wrapper is off outside training: inference saves nothing and the flag is reset
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.item_lm_loss(batch).loss, model.item_lm_loss(batch).loss)
    assert not any(getattr(layer, "_cllm4rec_checkpoint_active", False) for layer in layers)


@pytest.mark.parametrize("tokens", [0, 10_000])
def test_checkpointing_only_above_the_token_threshold(tiny_backbone: LoadedBackbone, tokens: int) -> None:
    model = CLLM4Rec(tiny_backbone, N_USERS, N_ITEMS, seed=0)
    model.autocast = False
    model.train()
    batch = _batch(tiny_backbone)
    model.checkpoint_tokens = 1 << 30
    _, _, full = _step(model, batch)
    model.checkpoint_tokens = tokens
    _, _, saved = _step(model, batch)
    assert (saved < 0.5 * full) == (batch.input_ids.numel() > tokens)
