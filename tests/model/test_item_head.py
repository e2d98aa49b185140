"""The chunked item head equals the one-matrix head: losses, gradients and top-K (docs/DESIGN.md §2).

A tiny ``logit_budget`` forces every loss through item chunks of a few items; the reference is the same model
with an unlimited budget (the (positions, J) logits in one piece). Tolerance: fp32, 1e-5 relative and 1e-6
absolute on losses and on every gradient. Top-K is compared on integer-valued embeddings, where every dot
product is exact in fp32, so equal scores are really equal and tie handling is tested too.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from cllm4rec.backbone import LoadedBackbone
from cllm4rec.evaluation import topk_items
from cllm4rec.model import CLLM4Rec
from cllm4rec.model.item_head import chunk_items, item_logsumexp, item_topk
from cllm4rec.model.losses import chunked
from cllm4rec.model.recommender import CLLM4RecRecommender
from cllm4rec.tokenization import collate

N_USERS, N_ITEMS = 5, 37
RTOL, ATOL = 1e-5, 1e-6


def _model(backbone: LoadedBackbone, *, lever: bool) -> CLLM4Rec:
    model = CLLM4Rec(backbone, N_USERS, N_ITEMS, seed=0, item_bias=lever, center_head=lever)
    model.autocast = False
    if lever:
        with torch.no_grad():
            model.item_bias.copy_(torch.linspace(-1.0, 1.0, N_ITEMS))
            model.head_center.copy_(0.1 * torch.randn(model.hidden_size, generator=torch.Generator().manual_seed(1)))
    return model


def _interactions(backbone: LoadedBackbone):
    tok = backbone.id_tokenizer(N_USERS, N_ITEMS)
    histories = [[1, 2, 3, 4, 30], [5, 6], [7, 8, 9, 10, 11, 36, 0], [12]]
    docs = [(tok.encode(f"user_{u} has interacted with"), tok.item_tokens(h)) for u, h in enumerate(histories)]
    return collate(docs, tok.pad_id)


def _loss_and_grads(model: CLLM4Rec, compute) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    out = compute(model)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.loss.detach(), out.per_doc.detach(), grads


def _assert_same(model: CLLM4Rec, compute) -> None:
    model.logit_budget = 1 << 40  # one matrix
    ref_loss, ref_doc, ref_grads = _loss_and_grads(model, compute)
    model.logit_budget = 20  # a handful of items per chunk
    assert chunked(model, 2)
    loss, doc, grads = _loss_and_grads(model, compute)
    torch.testing.assert_close(loss, ref_loss, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(doc, ref_doc, rtol=RTOL, atol=ATOL)
    assert set(grads) == set(ref_grads) and {"user_collab.weight", "item_collab.weight"} <= set(grads)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_grads[name], rtol=RTOL, atol=ATOL, msg=name)


@pytest.mark.parametrize("lever", [False, True], ids=["plain", "bias+centre"])
@pytest.mark.parametrize("target", ["next", "rest"])
def test_chunked_item_lm_loss_is_exact(tiny_backbone: LoadedBackbone, target: str, lever: bool) -> None:
    model, batch = _model(tiny_backbone, lever=lever), _interactions(tiny_backbone)
    _assert_same(model, lambda m: m.item_lm_loss(batch, target=target))
    if lever:
        assert "item_bias" in dict(model.named_parameters()) and model.item_bias.grad is not None


@pytest.mark.parametrize("lever", [False, True], ids=["plain", "bias+centre"])
@pytest.mark.parametrize(("readout", "reduction"), [("last", "sum"), ("mean", "mean")])
def test_chunked_rec_loss_is_exact(tiny_backbone: LoadedBackbone, lever: bool, readout: str, reduction: str) -> None:
    model, batch = _model(tiny_backbone, lever=lever), _interactions(tiny_backbone)
    model.readout = readout
    targets = torch.zeros(batch.input_ids.shape[0], N_ITEMS)
    targets[0, [3, 17]] = 1.0
    targets[1, 36] = 1.0
    targets[2, [0, 1, 2, 5]] = 1.0
    targets[3, 9] = 2.0  # a weight, not only multi-hot
    _assert_same(model, lambda m: m.rec_loss(batch, targets, reduction=reduction))


def test_logsumexp_gradient_matches_autograd() -> None:
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(9, 6, generator=gen, requires_grad=True)
    w = torch.randn(50, 6, generator=gen, requires_grad=True)
    b = torch.randn(50, generator=gen, requires_grad=True)
    g = torch.randn(9, generator=gen)
    ref = torch.logsumexp(h @ w.T + b, dim=1)
    ref_grads = torch.autograd.grad((ref * g).sum(), (h, w, b))
    got = item_logsumexp(h, w, b, budget=9 * 7)  # chunks of 7 items: the last one is short
    assert chunk_items(9, 50, 9 * 7) == 7
    grads = torch.autograd.grad((got * g).sum(), (h, w, b))
    torch.testing.assert_close(got, ref, rtol=RTOL, atol=ATOL)
    for a, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, r, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("seed", range(4))
def test_chunked_topk_equals_full_ranking(seed: int) -> None:
    """Integer embeddings: scores have many exact ties; known items, NaN-free, any chunk size."""
    gen = torch.Generator().manual_seed(seed)
    n_rows, n_items, d = 12, 301, 4
    h = torch.randint(-2, 3, (n_rows, d), generator=gen).float()
    w = torch.randint(-2, 3, (n_items, d), generator=gen).float()
    b = torch.randint(-1, 2, (n_items,), generator=gen).float() if seed % 2 else None
    full = h @ w.T + (0 if b is None else b)  # (B, J) the one-matrix scores
    known = sp.random(n_rows, n_items, density=0.2, random_state=seed, format="csr")
    exclude = [torch.as_tensor(known[r].indices, dtype=torch.long) for r in range(n_rows)]
    for k in (1, 10, 100, 301):
        reference = topk_items(full.numpy(), k, exclude=known)
        for budget in (n_rows * 7, n_rows * 64, 1 << 30):
            items, scores = item_topk(h, w, b, k, exclude, budget=budget)
            assert np.array_equal(items.numpy(), reference), (k, budget)
            expected = np.take_along_axis(full.numpy(), reference, axis=1)
            was_known = np.asarray(known[np.arange(n_rows)[:, None], reference].todense()) > 0
            expected[was_known] = -np.inf  # only reached when k exceeds the unknown items
            assert np.array_equal(scores.numpy(), expected)


def test_model_item_topk_applies_the_head(tiny_backbone: LoadedBackbone) -> None:
    model = _model(tiny_backbone, lever=True)
    h = torch.randn(3, model.hidden_size, generator=torch.Generator().manual_seed(2))
    full = model.item_logits(h).detach()
    model.logit_budget = 3 * 8
    items, scores = model.item_topk(
        h, 5, [torch.tensor([0, 1]), torch.tensor([], dtype=torch.long), torch.tensor([36])]
    )
    for r in range(3):
        torch.testing.assert_close(scores[r], full[r, items[r]], rtol=RTOL, atol=ATOL)
    assert not {0, 1} & set(items[0].tolist()) and 36 not in items[2].tolist()


@pytest.mark.parametrize("budget", [8, 1 << 24], ids=["chunked", "one-block"])
def test_recommender_topk_equals_ranking_its_scores(tiny_backbone: LoadedBackbone, budget: int) -> None:
    model = _model(tiny_backbone, lever=True)
    model.readout = "mean"
    rec = CLLM4RecRecommender(model, tiny_backbone.id_tokenizer(N_USERS, N_ITEMS), batch_size=2)
    users = np.array([0, 3, -1, 4, 1])
    history = sp.csr_matrix(
        (np.ones(7, dtype=np.float32), [1, 2, 30, 5, 0, 36, 9], [0, 3, 4, 5, 6, 7]), shape=(5, N_ITEMS)
    )
    scores = rec.score(users, history)
    model.logit_budget = budget
    items, top_scores = rec.topk(users, history, 10)
    assert np.array_equal(items, topk_items(scores, 10, exclude=history))
    np.testing.assert_allclose(top_scores, np.take_along_axis(scores, items, axis=1), rtol=1e-6, atol=1e-6)
