"""The vectorised top-K and metrics equal a plain per-user reference implementation on seeded random data.

The reference ranks with Python's sort on (-score, item), NaN and known items last, and computes Recall@K and
NDCG@K straight from their definitions (docs/DESIGN.md §6), one user at a time.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from cllm4rec.evaluation import Evaluator, ndcg_at_k, recall_at_k, topk_items


def _reference_ranking(scores: np.ndarray, known: sp.csr_matrix, k: int) -> list[list[int]]:
    out = []
    for b, row in enumerate(scores):
        seen = set(known[b].indices.tolist())
        key = [(-math.inf if (j in seen or math.isnan(v)) else float(v)) for j, v in enumerate(row)]
        out.append(sorted(range(len(row)), key=lambda j, key=key: (-key[j], j))[:k])
    return out


def _reference_metrics(ranked: list[int], heldout: set[int], k: int) -> tuple[float, float]:
    top = ranked[:k]
    hits = [1.0 if j in heldout else 0.0 for j in top]
    recall = sum(hits) / min(k, len(heldout))
    dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
    ideal = sum(1.0 / math.log2(r + 2) for r in range(min(k, len(heldout))))
    return recall, dcg / ideal


def _case(seed: int, n_users: int, n_items: int, levels: int) -> tuple[np.ndarray, sp.csr_matrix, sp.csr_matrix]:
    """Integer scores in ``levels`` values (ties everywhere), a few NaN, disjoint known and held-out items."""
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, size=(n_users, n_items)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.02] = np.nan
    draw = rng.random((n_users, n_items))
    known = sp.csr_matrix((draw < 0.1).astype(np.float32))
    held = (draw >= 0.1) & (draw < 0.13)
    held[rng.integers(0, n_users, size=3)] = False  # some users without held-out items
    heldout = sp.csr_matrix(held.astype(np.float32))
    return scores, known, heldout


@pytest.mark.parametrize(("seed", "levels"), [(0, 3), (1, 8), (2, 1000), (3, 2)])
def test_topk_equals_reference(seed: int, levels: int) -> None:
    scores, known, _ = _case(seed, n_users=40, n_items=500, levels=levels)
    for k in (1, 10, 37, 100, 500):  # k << J takes the argpartition path, 4k >= J the full sort
        assert topk_items(scores, k, exclude=known).tolist() == _reference_ranking(scores, known, k)


@pytest.mark.parametrize(("seed", "levels"), [(0, 3), (1, 8), (2, 1000)])
def test_evaluator_equals_reference(seed: int, levels: int) -> None:
    scores, known, heldout = _case(seed, n_users=60, n_items=700, levels=levels)
    evaluator = Evaluator(heldout, known, recall_ks=(5, 20, 100), ndcg_ks=(20, 100))
    order = np.random.default_rng(seed).permutation(60)
    for part in np.array_split(order, 4):  # any batches, in any order
        evaluator.add(part, scores[part])
    got = evaluator.result()
    ranked = _reference_ranking(scores, known, 100)
    users = [b for b in range(60) if heldout[b].nnz]
    assert got["n_users"] == len(users)
    for k in (5, 20, 100):
        expected = np.mean([_reference_metrics(ranked[b], set(heldout[b].indices), k)[0] for b in users])
        assert got[f"recall@{k}"] == pytest.approx(expected, abs=1e-12)
    for k in (20, 100):
        expected = np.mean([_reference_metrics(ranked[b], set(heldout[b].indices), k)[1] for b in users])
        assert got[f"ndcg@{k}"] == pytest.approx(expected, abs=1e-12)


def test_per_user_functions_equal_reference() -> None:
    scores, known, heldout = _case(7, n_users=25, n_items=300, levels=4)
    ranked = topk_items(scores, 50, exclude=known)
    lists = [heldout[b].indices for b in range(25)]
    for k in (1, 10, 50):
        nan = (math.nan, math.nan)
        ref = [_reference_metrics(ranked[b].tolist(), set(h), k) if len(h) else nan for b, h in enumerate(lists)]
        np.testing.assert_allclose(recall_at_k(ranked, heldout, k), [r for r, _ in ref], atol=1e-12)
        np.testing.assert_allclose(ndcg_at_k(ranked, lists, k), [n for _, n in ref], atol=1e-12)


def test_add_ranked_equals_add() -> None:
    scores, known, heldout = _case(11, n_users=30, n_items=400, levels=5)
    a, b = Evaluator(heldout, known), Evaluator(heldout, known)
    users = np.arange(30)
    a.add(users, scores)
    b.add_ranked(users, topk_items(scores, b.max_k, exclude=known))
    assert a.result() == b.result()
