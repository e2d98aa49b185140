"""The optional quality levers of the model: the item bias, the mean read-out and the rest-of-set target."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cllm4rec.backbone import LoadedBackbone
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.model import CLLM4Rec
from cllm4rec.tokenization import IDTokenizer, collate

N_USERS, N_ITEMS = 6, 30


def _model(backbone: LoadedBackbone, **kwargs: object) -> CLLM4Rec:
    m = CLLM4Rec(backbone, N_USERS, N_ITEMS, seed=0, **kwargs)
    m.autocast = False
    return m


def _interactions(tok: IDTokenizer) -> list[tuple[list[int], list[int]]]:
    histories = [[1, 2, 3, 4], [5, 6], [7, 8, 9, 10, 11]]
    return [(tok.encode(f"user_{u} has interacted with"), tok.item_tokens(h)) for u, h in enumerate(histories)]


def test_rest_target_equals_a_hand_computation(tiny_backbone: LoadedBackbone) -> None:
    model, tok = _model(tiny_backbone), tiny_backbone.id_tokenizer(N_USERS, N_ITEMS)
    docs = _interactions(tok)
    batch = collate(docs, tok.pad_id)
    out = model.item_lm_loss(batch, target="rest")
    h = model.hidden_states(batch, "collab")
    expected_docs, all_terms = [], []
    for b, (prompt, main) in enumerate(docs):
        items = [t - model.n_words - model.n_users for t in main]
        terms = []
        for k in range(len(items)):  # position len(prompt)+k-1 predicts main[k]; the rest is main[k:]
            logp = F.log_softmax(model.item_logits(h[b, len(prompt) + k - 1]), dim=-1)
            terms.append(-logp[items[k:]].mean())
        expected_docs.append(torch.stack(terms).mean())
        all_terms.extend(terms)
    assert torch.allclose(out.per_doc, torch.stack(expected_docs), atol=1e-5)
    assert math.isclose(out.loss.item(), torch.stack(all_terms).mean().item(), rel_tol=1e-5)
    # the last position's rest is its own target only: there the two losses agree
    nxt = model.item_lm_loss(collate([(docs[1][0], docs[1][1][:1])], tok.pad_id), target="next")
    rest = model.item_lm_loss(collate([(docs[1][0], docs[1][1][:1])], tok.pad_id), target="rest")
    assert torch.allclose(nxt.loss, rest.loss, atol=1e-6)
    with pytest.raises(CLLM4RecError, match="target must be"):
        model.item_lm_loss(batch, target="all")


def test_item_bias_starts_at_centred_log_popularity_and_trains(tiny_backbone: LoadedBackbone) -> None:
    model = _model(tiny_backbone, item_bias=True)
    counts = torch.arange(N_ITEMS, dtype=torch.float32)
    model.init_item_bias(counts.numpy())
    expected = torch.log1p(counts) - torch.log1p(counts).mean()
    assert torch.allclose(model.item_bias.detach(), expected)
    assert any(p is model.item_bias for p in model.trainable_parameters("collab"))
    assert all(p is not model.item_bias for p in model.trainable_parameters("content"))
    h = torch.randn(3, model.hidden_size)
    plain = h @ model.item_collab.weight.T
    assert torch.allclose(model.item_logits(h), plain + expected, atol=1e-5)
    assert torch.allclose(model.item_logits(h, "content"), h @ model.item_content.weight.T, atol=1e-5)
    tok = tiny_backbone.id_tokenizer(N_USERS, N_ITEMS)
    model.item_lm_loss(collate(_interactions(tok), tok.pad_id)).loss.backward()
    assert model.item_bias.grad is not None and model.item_bias.grad.abs().sum() > 0
    with pytest.raises(CLLM4RecError, match="entries"):
        model.init_item_bias([1.0, 2.0])


def test_mean_readout_pools_item_tokens_and_the_last_token(tiny_backbone: LoadedBackbone) -> None:
    model, tok = _model(tiny_backbone, readout="mean"), tiny_backbone.id_tokenizer(N_USERS, N_ITEMS)
    prompts = [
        tok.encode("user_1 has interacted with item_3 item_4, user_1 will interact with"),
        tok.encode("user_2 has interacted with item_7, user_2 will interact with"),
    ]
    batch = collate([(p, []) for p in prompts], tok.pad_id)
    scores = model.rec_scores(batch)
    h = model.hidden_states(batch, "collab")
    for b, p in enumerate(prompts):
        keep = [t for t, token in enumerate(p) if token >= model.n_words + model.n_users] + [len(p) - 1]
        pooled = h[b, keep].float().mean(0)
        assert torch.allclose(scores[b], model.item_logits(pooled), atol=1e-4)
    with pytest.raises(CLLM4RecError, match="readout"):
        _model(tiny_backbone, readout="max")


def test_levers_survive_save_and_load(tiny_backbone: LoadedBackbone, tmp_path: Path) -> None:
    model = _model(tiny_backbone, item_bias=True, readout="mean")
    model.init_item_bias(torch.arange(N_ITEMS).numpy())
    model.save(tmp_path / "m")
    again = CLLM4Rec.load(tmp_path / "m", backbone=tiny_backbone)
    again.autocast = False
    assert again.readout == "mean" and again.item_bias is not None
    assert torch.equal(again.item_bias, model.item_bias)
    tok = tiny_backbone.id_tokenizer(N_USERS, N_ITEMS)
    batch = collate([(tok.encode("user_1 has interacted with item_3, user_1 will interact with"), [])], tok.pad_id)
    assert torch.equal(again.rec_scores(batch), model.rec_scores(batch))


def test_centred_head_subtracts_the_mean_hidden_state(tiny_backbone: LoadedBackbone, tmp_path: Path) -> None:
    model, tok = _model(tiny_backbone, item_bias=True, center_head=True), tiny_backbone.id_tokenizer(N_USERS, N_ITEMS)
    batch = collate(_interactions(tok), tok.pad_id)
    model.set_head_center([batch])
    h = model.hidden_states(batch, "collab")[:, :-1][batch.loss_mask[:, 1:]].float()
    assert torch.allclose(model.head_center, h.mean(0), atol=1e-5)
    probe = torch.randn(2, model.hidden_size)
    expected = (probe - h.mean(0)) @ model.item_collab.weight.T + model.item_bias
    assert torch.allclose(model.item_logits(probe), expected, atol=1e-4)
    assert all(p is not model.head_center for p in model.trainable_parameters("collab"))  # fixed, not trained
    model.save(tmp_path / "m")
    again = CLLM4Rec.load(tmp_path / "m", backbone=tiny_backbone)
    assert torch.equal(again.head_center, model.head_center)
    with pytest.raises(CLLM4RecError, match="at least one"):
        _model(tiny_backbone, center_head=True).set_head_center([])
