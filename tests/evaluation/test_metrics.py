"""Recall@K / NDCG@K / top-K: hand-computed cases and property tests with seeded random draws."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.evaluation import ndcg_at_k, recall_at_k, selection_score, topk_items

# ---------------------------------------------------------------- hand-computed cases


def test_recall_hand_computed() -> None:
    ranked = np.array([[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]])
    heldout = [np.array([1, 3]), np.array([0])]
    assert recall_at_k(ranked, heldout, 2) == pytest.approx([0.5, 0.0])
    assert recall_at_k(ranked, heldout, 4) == pytest.approx([1.0, 0.0])
    assert recall_at_k(ranked, heldout, 5) == pytest.approx([1.0, 1.0])


def test_recall_uses_min_of_k_and_heldout() -> None:
    ranked = np.array([[0, 9, 8, 7]])
    heldout = [np.array([0, 1, 2, 3])]  # 4 held-out items, K = 2: the denominator is 2, not 4
    assert recall_at_k(ranked, heldout, 2) == pytest.approx([0.5])
    assert recall_at_k(ranked, heldout, 4) == pytest.approx([0.25])


def test_ndcg_hand_computed() -> None:
    ranked = np.array([[0, 1, 2, 3, 4]])
    heldout = [np.array([1, 3])]
    # K=2: DCG = 1/log2(3); IDCG = 1 + 1/log2(3)
    assert ndcg_at_k(ranked, heldout, 2) == pytest.approx([(1 / math.log2(3)) / (1 + 1 / math.log2(3))])
    # K=5: DCG = 1/log2(3) + 1/log2(5); IDCG as above (two relevant items)
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(ranked, heldout, 5) == pytest.approx([expected])


def test_ndcg_ideal_uses_min_of_k_and_heldout() -> None:
    ranked = np.array([[5, 0, 6]])
    heldout = [np.array([0, 1, 2, 3])]  # K=2: IDCG = 1 + 1/log2(3), DCG = 1/log2(3)
    assert ndcg_at_k(ranked, heldout, 2) == pytest.approx([(1 / math.log2(3)) / (1 + 1 / math.log2(3))])


def test_heldout_as_csr_equals_lists() -> None:
    ranked = np.array([[0, 1, 2, 3], [3, 2, 1, 0]])
    lists = [np.array([2]), np.array([0, 1])]
    csr = sp.csr_matrix(np.array([[0, 0, 1, 0, 0], [1, 1, 0, 0, 0]], dtype=np.float32))
    for fn in (recall_at_k, ndcg_at_k):
        assert fn(ranked, csr, 3) == pytest.approx(fn(ranked, lists, 3))


def test_user_without_heldout_is_nan() -> None:
    ranked = np.array([[0, 1], [1, 0]])
    heldout = [np.array([0]), np.array([], dtype=np.int64)]
    assert np.isnan(recall_at_k(ranked, heldout, 2)[1])
    assert np.isnan(ndcg_at_k(ranked, heldout, 2)[1])
    assert recall_at_k(ranked, heldout, 2)[0] == 1.0


def test_topk_ties_go_to_lower_index() -> None:
    scores = np.array([[1.0, 3.0, 3.0, 2.0, 3.0]])
    assert topk_items(scores, 2).tolist() == [[1, 2]]
    assert topk_items(scores, 4).tolist() == [[1, 2, 4, 3]]
    flat = np.zeros((2, 100))  # the argpartition path (k << J) with every score tied
    assert topk_items(flat, 3).tolist() == [[0, 1, 2], [0, 1, 2]]


def test_topk_excludes_known_items() -> None:
    scores = np.array([[1.0, 3.0, 3.0, 2.0, 3.0], [5.0, 4.0, 3.0, 2.0, 1.0]])
    exclude = sp.csr_matrix(np.array([[0, 1, 0, 0, 0], [1, 0, 1, 0, 0]], dtype=np.float32))
    assert topk_items(scores, 2, exclude).tolist() == [[2, 4], [1, 3]]


def test_topk_accepts_torch_and_clips_k() -> None:
    scores = torch.tensor([[0.1, 0.9, 0.5]], dtype=torch.bfloat16)
    assert topk_items(scores, 10).tolist() == [[1, 2, 0]]


def test_topk_nan_ranks_last() -> None:
    assert topk_items(np.array([[np.nan, 1.0, 0.0]]), 3).tolist() == [[1, 2, 0]]


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(CLLM4RecError):
        topk_items(np.zeros(5), 2)
    with pytest.raises(CLLM4RecError):
        topk_items(np.zeros((2, 5)), 2, exclude=sp.csr_matrix((3, 5)))
    with pytest.raises(CLLM4RecError):
        recall_at_k(np.zeros((2, 3), dtype=int), [np.array([0])], 2)


def test_selection_score() -> None:
    m = {"recall@20": 0.25, "recall@40": 0.5, "ndcg@100": 0.125, "ndcg@20": 9.0}
    assert selection_score(m) == pytest.approx(0.875)
    assert selection_score(m, keys=("ndcg@20",)) == 9.0
    with pytest.raises(CLLM4RecError, match="recall@40"):
        selection_score({"recall@20": 0.1, "ndcg@100": 0.1})


# ---------------------------------------------------------------- properties (seeded random draws)


def _random_case(rng: np.random.Generator, n_users: int = 30, n_items: int = 60):
    heldout = [rng.choice(n_items, size=rng.integers(1, 15), replace=False) for _ in range(n_users)]
    scores = rng.integers(0, 5, size=(n_users, n_items)).astype(np.float32)  # many ties on purpose
    return heldout, scores


@pytest.mark.parametrize("seed", range(5))
def test_topk_matches_reference_sort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    _, scores = _random_case(rng, n_items=200)
    for k in (1, 7, 40, 150, 200):
        reference = np.array([np.lexsort((np.arange(200), -row))[:k] for row in scores])
        assert np.array_equal(topk_items(scores, k), reference)


@pytest.mark.parametrize("seed", range(5))
def test_perfect_ranking_scores_one(seed: int) -> None:
    rng = np.random.default_rng(seed)
    heldout, scores = _random_case(rng)
    for b, items in enumerate(heldout):
        scores[b, items] += 100.0  # held-out items first, in any order among themselves
    ranked = topk_items(scores, 60)
    for k in (1, 5, 20, 60):
        assert recall_at_k(ranked, heldout, k) == pytest.approx(np.ones(len(heldout)))
        assert ndcg_at_k(ranked, heldout, k) == pytest.approx(np.ones(len(heldout)))


@pytest.mark.parametrize("seed", range(5))
def test_metrics_bounded_and_match_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    heldout, scores = _random_case(rng)
    ranked = topk_items(scores, 60)
    previous_hits = np.zeros(len(heldout))
    for k in (1, 3, 10, 20, 60):
        r, n = recall_at_k(ranked, heldout, k), ndcg_at_k(ranked, heldout, k)
        assert np.all((r >= 0) & (r <= 1 + 1e-12)) and np.all((n >= 0) & (n <= 1 + 1e-12))
        hits = np.array([len(set(ranked[b, :k]) & set(h)) for b, h in enumerate(heldout)])
        assert r == pytest.approx(hits / np.minimum(k, [len(h) for h in heldout]))
        assert np.all(hits >= previous_hits)
        previous_hits = hits


@pytest.mark.parametrize("seed", range(5))
def test_known_items_never_recommended(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_users, n_items, k = 20, 80, 30
    known = sp.random(n_users, n_items, density=0.4, random_state=seed, format="csr")
    known.data[:] = 1
    scores = rng.normal(size=(n_users, n_items))
    scores[known.nonzero()] += 10.0  # known items would otherwise win
    ranked = topk_items(scores, k, exclude=known)
    for b in range(n_users):
        assert not set(ranked[b]) & set(known[b].indices)
