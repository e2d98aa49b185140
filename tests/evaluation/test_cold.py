"""Cold-start rankings and the content kNN baselines, hand-checked on tiny cases."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from cllm4rec.baselines.content_knn import TfidfKNN, _ContentKNN
from cllm4rec.baselines.runner import run_baseline
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data import Dataset
from cllm4rec.data.cold import ColdItems
from cllm4rec.evaluation.cold import evaluate_cold, few_interaction_metrics, random_cold_scores


def _csr(rows: list[list[int]], n: int) -> sp.csr_matrix:
    data = [(u, j) for u, items in enumerate(rows) for j in items]
    r, c = zip(*data, strict=True) if data else ((), ())
    return sp.csr_matrix((np.ones(len(r), dtype=np.float32), (r, c)), shape=(len(rows), n))


def _dataset() -> Dataset:
    """Two users: one likes red balls, one blue cars; two cold-valid and two cold-test items of each kind."""
    warm = ["red ball small", "red ball big", "blue car fast", "blue car slow", "red ball tiny", "blue car tiny"]
    cold = ["red ball new", "blue car new", "blue car newer", "red ball newer"]
    return Dataset(
        train=_csr([[0], [2]], 6),
        valid=_csr([[1], [3]], 6),
        test=_csr([[4], [5]], 6),
        user_ids=["a", "b"],
        item_ids=[f"w{j}" for j in range(6)],
        item_text=[{"title": t} for t in warm],
        cold=ColdItems([f"c{k}" for k in range(4)], [{"title": t} for t in cold], 2, _csr([[0, 3], [1, 2]], 4)),
    )


class _Fixed(_ContentKNN):
    """Content kNN with hand-made item vectors (warm 0-5, then cold 0-3)."""

    name = "fixed"

    def encode(self, texts: list[str], progress: bool) -> np.ndarray:
        return np.array(
            [[1, 0], [1, 0], [0, 1], [0, 1], [1, 0], [0, 1], [3, 4], [0, 2], [1, 1], [2, 0]], dtype=np.float32
        )


def test_content_knn_scores_are_cosines_with_the_mean_history_vector() -> None:
    ds = _dataset()
    model = _Fixed().fit(ds)
    history = _csr([[0, 2]], 6)  # profile = mean of (1,0) and (0,1) -> direction (1,1)/sqrt2
    np.testing.assert_allclose(model.score(np.array([0]), history), [[0.70710677] * 6], rtol=1e-6)
    expected_test = [[(1 + 1) / (np.sqrt(2) * np.sqrt(2)), 2 / (np.sqrt(2) * 2)]]  # cold items 2, 3
    np.testing.assert_allclose(model.score_cold(np.array([0]), history, "test"), expected_test, rtol=1e-6)
    np.testing.assert_allclose(
        model.score_cold(np.array([0]), history, "valid"), [[7 / (5 * np.sqrt(2)), 1 / np.sqrt(2)]], rtol=1e-6
    )
    assert not model.score(np.array([0]), _csr([[]], 6)).any()  # an empty history ties everything at 0


def test_tfidf_ranks_the_cold_item_that_shares_the_history_words_first() -> None:
    ds = _dataset()
    model = TfidfKNN().fit(ds)
    scores = model.score_cold(np.array([0, 1]), ds.known("test"), "test")  # "blue car newer", "red ball newer"
    assert scores[0, 1] > scores[0, 0] and scores[1, 0] > scores[1, 1]
    result = evaluate_cold(model, ds, "test")
    assert result["cold"].metrics["recall@20"] == 1.0 and result["cold"].metrics["n_users"] == 2


def test_models_without_content_rank_cold_items_randomly_below_the_warm_ones() -> None:
    warm = np.array([[0.5, -2.0, 3.0]], dtype=np.float32)
    cold = random_cold_scores(warm, 4, np.random.default_rng(0))
    assert cold.shape == (1, 4) and cold.max() < warm.min() and len(set(cold[0].tolist())) == 4
    result = run_baseline("pop", _dataset(), progress=False)
    assert set(result.cold) == {"valid-cold", "test-cold", "test-all"}
    assert result.cold["test-cold"]["n_users"] == 2


def test_all_items_ranking_holds_warm_and_cold_held_out_items() -> None:
    ds = _dataset()
    model = _Fixed().fit(ds)
    result = evaluate_cold(model, ds, "valid")
    # valid held out: user 0 -> warm item 1 (known: 0) and cold-valid 0; user 1 -> warm 3 and cold-valid 1
    assert result["all"].evaluator.heldout.shape == (2, 6 + 2)
    assert result["all"].metrics["n_users"] == 2
    assert result["all"].metrics["recall@20"] == 1.0  # six candidates, all fit in the top 20


def test_cold_evaluation_needs_cold_items_and_few_interaction_users_are_counted() -> None:
    ds = _dataset()
    plain = Dataset(ds.train, ds.valid, ds.test, ds.user_ids, ds.item_ids, ds.item_text)
    with pytest.raises(CLLM4RecError, match="no cold items"):
        evaluate_cold(_Fixed().fit(plain), plain, "test")
    result = evaluate_cold(_Fixed().fit(ds), ds, "test")
    few = few_interaction_metrics(result["cold"], ds.train, max_items=1)  # one training item each
    assert few["n_users"] == 2 and few["recall@20"] == 1.0
    assert few_interaction_metrics(result["cold"], ds.train, max_items=0)["n_users"] == 0
