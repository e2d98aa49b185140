"""The Evaluator and the harness on a tiny synthetic Dataset."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data import Dataset
from cllm4rec.evaluation import Evaluator, Recommender, batch_users, evaluate, ndcg_at_k, recall_at_k, topk_items


def _csr(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    dense = np.zeros((len(rows), n_items), dtype=np.float32)
    for i, items in enumerate(rows):
        dense[i, items] = 1
    return sp.csr_matrix(dense)


def tiny_dataset() -> Dataset:
    """4 users x 6 items; user 3 has no valid or test items and must be skipped."""
    train = _csr([[0, 1], [2, 3], [0, 4], [5]], 6)
    valid = _csr([[2], [0], [1, 5], []], 6)
    test = _csr([[3], [1, 4], [], []], 6)
    return Dataset(train, valid, test, user_ids=list("abcd"), item_ids=[f"i{j}" for j in range(6)])


def test_evaluator_users_and_hand_result() -> None:
    ds = tiny_dataset()
    ev = Evaluator(ds.valid, ds.known("valid"), recall_ks=(1, 2), ndcg_ks=(2,))
    assert ev.users.tolist() == [0, 1, 2]
    # item scores 5 > 4 > ... > 0 for everyone: item 5 first, then 4, 3, ...; known items are skipped
    scores = np.tile(np.arange(6, dtype=np.float32), (3, 1))
    ev.add(np.array([0, 1, 2]), scores)
    # user 0 (known 0,1): ranking 5,4 -> held-out {2}: miss. user 1 (known 2,3): 5,4 -> {0}: miss.
    # user 2 (known 0,4): 5,3 -> {1,5}: hit at rank 1.
    res = ev.result()
    assert res["n_users"] == 3
    assert res["recall@1"] == pytest.approx((0 + 0 + 1) / 3)
    assert res["recall@2"] == pytest.approx((0 + 0 + 0.5) / 3)
    assert res["ndcg@2"] == pytest.approx((0 + 0 + 1 / (1 + 1 / np.log2(3))) / 3)
    rows = ev.per_user()
    assert [r["user"] for r in rows] == [0, 1, 2] and rows[2]["n_heldout"] == 2
    assert rows[2]["recall@1"] == 1.0


def test_default_keys_and_batches_are_order_invariant() -> None:
    rng = np.random.default_rng(0)
    n_users, n_items = 50, 300
    heldout = sp.random(n_users, n_items, density=0.05, random_state=1, format="csr")
    known = sp.random(n_users, n_items, density=0.2, random_state=2, format="csr")
    scores = rng.normal(size=(n_users, n_items)).astype(np.float32)
    one = Evaluator(heldout, known)
    one.add(np.arange(n_users), scores)
    res = one.result()
    assert set(res) == {"recall@20", "recall@40", "recall@100", "ndcg@20", "ndcg@100", "n_users"}
    two = Evaluator(heldout, known)
    perm = rng.permutation(n_users)
    for chunk in np.array_split(perm, 7):
        two.add(chunk, torch.from_numpy(scores[chunk]))
    assert two.result() == pytest.approx(res)
    # equals the plain functions averaged over users with held-out items
    users = one.users
    ranked = topk_items(scores[users], 100, exclude=known[users])
    assert res["recall@40"] == pytest.approx(np.mean(recall_at_k(ranked, heldout[users], 40)))
    assert res["ndcg@100"] == pytest.approx(np.mean(ndcg_at_k(ranked, heldout[users], 100)))


def test_result_refuses_partial_evaluation() -> None:
    ds = tiny_dataset()
    ev = Evaluator(ds.valid, ds.known("valid"))
    ev.add(np.array([0, 3]), np.zeros((2, 6)))  # user 3 has nothing held out: ignored
    assert ev.n_missing == 2
    with pytest.raises(CLLM4RecError, match="2 of 3"):
        ev.result()
    with pytest.raises(CLLM4RecError, match="shape"):
        ev.add(np.array([1]), np.zeros((1, 5)))


def test_empty_split_is_an_error() -> None:
    ev = Evaluator(sp.csr_matrix((3, 4)), sp.csr_matrix((3, 4)))
    assert len(ev.users) == 0
    with pytest.raises(CLLM4RecError, match="nothing to evaluate"):
        ev.result()


class Oracle:
    """Scores the held-out items of ``split`` highest, and known items even higher (they must be excluded)."""

    name = "oracle"

    def __init__(self, ds: Dataset, split: str) -> None:
        self.target, self.known, self.calls = ds.split(split).toarray(), ds.known(split).toarray(), []

    def fit(self, dataset: Dataset, *, split: str = "valid", progress: bool = False) -> Oracle:
        return self

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        assert np.array_equal(history.toarray(), self.known[users])  # the harness passes what is known
        self.calls.append(users.tolist())
        return self.target[users] + self.known[users] * 10


def test_evaluate_uses_split_and_known() -> None:
    ds = tiny_dataset()
    oracle = Oracle(ds, "valid")
    assert isinstance(oracle, Recommender)
    res = evaluate(oracle, ds, "valid", batch_size=2, recall_ks=(1, 5), ndcg_ks=(5,))
    assert oracle.calls == [[0, 1], [2]]
    assert res.metrics == {"recall@1": 1.0, "recall@5": 1.0, "ndcg@5": 1.0, "n_users": 3}
    assert res.n_users == 3 and len(res.per_user()) == 3 and res.score_seconds >= 0
    res = evaluate(Oracle(ds, "test"), ds, "test")
    assert res.evaluator.users.tolist() == [0, 1] and res.metrics["recall@20"] == 1.0
    assert res.metrics["ndcg@100"] == 1.0
    with pytest.raises(CLLM4RecError, match="split"):
        evaluate(oracle, ds, "train")
    with pytest.raises(CLLM4RecError, match="batch_size"):
        evaluate(oracle, ds, "valid", batch_size=0)


def test_batching_does_not_change_the_result() -> None:
    ds = tiny_dataset()
    whole = evaluate(Oracle(ds, "valid"), ds, "valid").metrics
    for batch_size in (1, 2):
        assert evaluate(Oracle(ds, "valid"), ds, "valid", batch_size=batch_size).metrics == whole
    assert batch_users(10) == 4096 and batch_users(1 << 26) == 1 and batch_users(1 << 20) == 64
