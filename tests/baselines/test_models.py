"""Each baseline against its definition on small inputs."""

from __future__ import annotations

import numpy as np
import pytest

from cllm4rec.baselines.runner import get_baseline
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data import Dataset


def test_popularity_counts_fit_split(tiny: Dataset) -> None:
    users = np.array([1, 2])
    valid = get_baseline("pop").fit(tiny, split="valid").score(users, tiny.train[users])
    test = get_baseline("pop").fit(tiny, split="test").score(users, tiny.known("test")[users])
    assert np.array_equal(valid[0], np.asarray(tiny.train.sum(axis=0)).ravel())
    assert np.array_equal(test[1], np.asarray((tiny.train + tiny.valid).sum(axis=0)).ravel())


def test_ease_matches_closed_form(tiny: Dataset) -> None:
    lam = 7.0
    model = get_baseline("ease", lam=lam).fit(tiny)
    x = tiny.train.toarray().astype(np.float64)
    p = np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p / np.diag(p)[None, :]
    assert np.allclose(np.diag(model.weights), 0.0)
    assert np.allclose(model.weights, b, atol=1e-5)
    users = np.arange(5)
    assert np.allclose(model.score(users, tiny.train[users]), x[:5] @ b, atol=1e-4)


def test_ease_refit_for_test_uses_train_and_valid(tiny: Dataset) -> None:
    a = get_baseline("ease").fit(tiny, split="valid").weights
    b = get_baseline("ease").fit(tiny, split="test").weights
    assert not np.allclose(a, b)


def _cosine(x: np.ndarray) -> np.ndarray:
    norms = np.sqrt(x.sum(axis=0))
    sim = (x.T @ x) / np.outer(norms, norms).clip(min=1e-12)
    np.fill_diagonal(sim, 0.0)
    return sim


def test_itemknn_without_pruning_is_full_cosine(tiny: Dataset) -> None:
    model = get_baseline("itemknn", k=tiny.n_items).fit(tiny)
    x = tiny.train.toarray().astype(np.float64)
    assert np.allclose(model.weights.toarray(), _cosine(x), atol=1e-6)


@pytest.mark.parametrize("k", [1, 3])
def test_itemknn_keeps_k_neighbours_per_candidate(tiny: Dataset, k: int) -> None:
    model = get_baseline("itemknn", k=k).fit(tiny)
    weights = model.weights.toarray()  # column j: the neighbours of candidate j
    sim = _cosine(tiny.train.toarray().astype(np.float64))
    assert np.all((weights > 0).sum(axis=0) <= k)
    for j in range(tiny.n_items):
        kept = np.flatnonzero(weights[:, j])
        if len(kept):  # the kept similarities are the k largest of column j
            assert weights[kept, j].min() >= np.sort(sim[:, j])[-k] - 1e-6


def test_itemknn_shrink_damps_similarities(tiny: Dataset) -> None:
    plain = get_baseline("itemknn", k=tiny.n_items).fit(tiny).weights.toarray()
    shrunk = get_baseline("itemknn", k=tiny.n_items, shrink=10.0).fit(tiny).weights.toarray()
    assert np.all(shrunk <= plain + 1e-7) and shrunk.sum() < plain.sum()


def test_multivae_early_stopping_keeps_best_epoch(tiny: Dataset) -> None:
    model = get_baseline("multivae", max_epochs=30, patience=3, hidden=16, latent=4, batch_size=8).fit(tiny)
    log = model.history_log
    assert model.info["epochs_run"] == len(log) <= 30
    best = max(log, key=lambda row: row["ndcg@100"])
    assert model.info["best_epoch"] == best["epoch"]
    assert len(log) == 30 or len(log) - model.info["best_epoch"] == 3
    betas = [row["beta"] for row in log]
    assert betas == sorted(betas) and max(betas) <= 0.2


def test_get_baseline_errors_and_coercion() -> None:
    with pytest.raises(CLLM4RecError, match="pop, itemknn, ease, multivae"):
        get_baseline("bpr")
    with pytest.raises(CLLM4RecError, match="unknown parameter.*lambda.*valid: lam"):
        get_baseline("ease", **{"lambda": 3})
    with pytest.raises(CLLM4RecError, match="ease parameter lam must be a number"):
        get_baseline("ease", lam="big")
    with pytest.raises(CLLM4RecError, match="positive"):
        get_baseline("ease", lam="-1")
    assert get_baseline("ease", lam="300").params.lam == 300.0
    assert get_baseline("itemknn", k="50").params.k == 50
    assert get_baseline("multivae", max_epochs="7", select_on="selection").params.max_epochs == 7
    with pytest.raises(CLLM4RecError, match="select_on"):
        get_baseline("multivae", select_on="auc")
