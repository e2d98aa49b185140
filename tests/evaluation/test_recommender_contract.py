"""The contract every baseline inherits: fit returns self, scores are (B, J) and finite, errors are clear."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from cllm4rec.baselines import BASELINES
from cllm4rec.baselines.runner import get_baseline
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data import Dataset
from cllm4rec.evaluation import Recommender

FAST = {"multivae": {"max_epochs": 3, "hidden": 16, "latent": 8, "batch_size": 16}}


def make(name: str):
    return get_baseline(name, **FAST.get(name, {}))


@pytest.mark.parametrize("name", list(BASELINES))
def test_fit_and_score_shapes(name: str, tiny: Dataset) -> None:
    model = make(name)
    assert isinstance(model, Recommender) and model.name == name
    assert model.fit(tiny, split="valid") is model
    users = np.array([0, 5, 7])
    scores = model.score(users, tiny.known("valid")[users])
    assert scores.shape == (3, tiny.n_items) and np.all(np.isfinite(scores))


@pytest.mark.parametrize("name", list(BASELINES))
def test_empty_history_and_unknown_user(name: str, tiny: Dataset) -> None:
    model = make(name).fit(tiny, split="test")
    # a user the model never saw, with no history: still a full, finite score row
    scores = model.score(np.array([tiny.n_users + 10]), sp.csr_matrix((1, tiny.n_items), dtype=np.float32))
    assert scores.shape == (1, tiny.n_items) and np.all(np.isfinite(scores))


@pytest.mark.parametrize("name", list(BASELINES))
def test_score_errors(name: str, tiny: Dataset) -> None:
    model = make(name)
    with pytest.raises(CLLM4RecError, match="not fitted"):
        model.score(np.array([0]), tiny.train[[0]])
    model.fit(tiny)
    with pytest.raises(CLLM4RecError, match="shape"):
        model.score(np.array([0, 1]), tiny.train[[0]])
    with pytest.raises(CLLM4RecError, match="split"):
        model.fit(tiny, split="train")


@pytest.mark.parametrize("name", list(BASELINES))
def test_deterministic(name: str, tiny: Dataset) -> None:
    users = np.arange(tiny.n_users)
    history = tiny.known("test")
    first = make(name).fit(tiny, split="test").score(users, history)
    second = make(name).fit(tiny, split="test").score(users, history)
    assert np.array_equal(first, second)


@pytest.mark.parametrize("name", ["itemknn", "ease", "multivae"])
def test_personalised_models_learn_the_clusters(name: str, tiny: Dataset) -> None:
    params = {"max_epochs": 40, "hidden": 32, "latent": 8, "batch_size": 16} if name == "multivae" else {}
    model = get_baseline(name, **params).fit(tiny)
    users = np.arange(tiny.n_users)
    scores = model.score(users, tiny.train)
    half = tiny.n_items // 2
    own = np.where((users % 2 == 0)[:, None], scores[:, :half], scores[:, half:]).mean()
    other = np.where((users % 2 == 0)[:, None], scores[:, half:], scores[:, :half]).mean()
    assert own > other


def test_get_baseline_errors_and_coercion() -> None:
    with pytest.raises(CLLM4RecError, match="pop, itemknn, ease, multivae"):
        get_baseline("bpr")
    with pytest.raises(CLLM4RecError, match="unknown parameter.*lambda.*valid: lam"):
        get_baseline("ease", **{"lambda": 3})
    with pytest.raises(CLLM4RecError, match="not a valid float"):
        get_baseline("ease", lam="big")
    with pytest.raises(CLLM4RecError, match="positive"):
        get_baseline("ease", lam="-1")
    assert get_baseline("ease", lam="300").params.lam == 300.0
    assert get_baseline("itemknn", k="50").params.k == 50
    assert get_baseline("multivae", max_epochs="7", select_on="selection").params.max_epochs == 7
    with pytest.raises(CLLM4RecError, match="select_on"):
        get_baseline("multivae", select_on="auc")
