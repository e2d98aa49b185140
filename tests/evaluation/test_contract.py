"""The contract every recommender inherits, run on each baseline and on a tiny trained CLLM4Rec run.

fit returns self, scores are (B, J) and finite, a user known only by an empty history still gets a full
row, errors are clear, scoring is deterministic, and each personalised model beats popularity on its data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from cllm4rec.baselines import BASELINES
from cllm4rec.baselines.runner import get_baseline
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data import Dataset
from cllm4rec.evaluation import Recommender, evaluate, selection_score

FAST = {
    "multivae": {"max_epochs": 3, "hidden": 16, "latent": 8, "batch_size": 16},
    "llmknn": {"backbone": "tiny-llama"},
}
MODELS = [*BASELINES, "cllm4rec"]
CONTENT = ("tfidf", "llmknn")


def with_text(ds: Dataset) -> Dataset:
    """The two-cluster dataset with item titles that name each item's cluster (for the content models)."""
    half = ds.n_items // 2
    titles = [{"title": f"{'sunny' if j < half else 'moonlit'} garden thing {j}"} for j in range(ds.n_items)]
    return dataclasses.replace(ds, item_text=titles)


@pytest.fixture()
def case(request: pytest.FixtureRequest, tiny: Dataset) -> tuple[Callable[[], Recommender], Dataset]:
    """(a factory of unfitted models, the dataset to use them on) for the model named by the test's param."""
    name = request.param
    if name == "cllm4rec":
        from cllm4rec.serving import load_run

        run: Path = request.getfixturevalue("tiny_run")
        return (lambda: load_run(run, device="cpu").recommender), request.getfixturevalue("run_dataset")
    return (lambda: get_baseline(name, **FAST.get(name, {}))), with_text(tiny) if name in CONTENT else tiny


@pytest.mark.parametrize("case", MODELS, indirect=True)
def test_fit_and_score_shapes(case) -> None:
    make, ds = case
    model = make()
    assert isinstance(model, Recommender)
    assert model.fit(ds, split="valid") is model
    users = np.array([0, 5, 7])
    scores = model.score(users, ds.known("valid")[users])
    assert scores.shape == (3, ds.n_items) and np.all(np.isfinite(scores))


@pytest.mark.parametrize("case", MODELS, indirect=True)
def test_empty_history_and_unknown_user(case) -> None:
    make, ds = case
    model = make().fit(ds, split="test")
    # a user the model never saw, with no history: still a full, finite score row
    scores = model.score(np.array([ds.n_users + 10]), sp.csr_matrix((1, ds.n_items), dtype=np.float32))
    assert scores.shape == (1, ds.n_items) and np.all(np.isfinite(scores))


@pytest.mark.parametrize("case", MODELS, indirect=True)
def test_score_errors(case) -> None:
    make, ds = case
    model = make()
    model.fit(ds)
    with pytest.raises(CLLM4RecError, match="shape"):
        model.score(np.array([0, 1]), ds.train[[0]])
    with pytest.raises(CLLM4RecError, match="split"):
        model.fit(ds, split="train")


@pytest.mark.parametrize("name", list(BASELINES))
def test_baselines_refuse_to_score_before_fit(name: str, tiny: Dataset) -> None:
    with pytest.raises(CLLM4RecError, match="not fitted"):
        get_baseline(name, **FAST.get(name, {})).score(np.array([0]), tiny.train[[0]])


@pytest.mark.parametrize("name", CONTENT)
def test_content_baselines_need_item_text(name: str, tiny: Dataset) -> None:
    with pytest.raises(CLLM4RecError, match="needs item text"):
        get_baseline(name, **FAST.get(name, {})).fit(tiny)


def test_cllm4rec_refuses_another_dataset(tiny_run: Path, make_dataset, run_dataset: Dataset) -> None:
    from cllm4rec.serving import load_run

    model = load_run(tiny_run, device="cpu").recommender
    other = make_dataset(seed=5, n_users=run_dataset.n_users, n_items=run_dataset.n_items)
    with pytest.raises(CLLM4RecError, match="another dataset"):
        model.fit(other)
    with pytest.raises(CLLM4RecError, match="users x"):
        model.fit(make_dataset())


@pytest.mark.parametrize("case", MODELS, indirect=True)
def test_deterministic(case) -> None:
    make, ds = case
    users = np.arange(ds.n_users)
    history = ds.known("test")
    first = make().fit(ds, split="test").score(users, history)
    second = make().fit(ds, split="test").score(users, history)
    assert np.array_equal(first, second)


@pytest.mark.parametrize("name", ["itemknn", "ease", "multivae", "tfidf"])
def test_personalised_baselines_learn_the_clusters(name: str, tiny: Dataset) -> None:
    params = {"max_epochs": 40, "hidden": 32, "latent": 8, "batch_size": 16} if name == "multivae" else {}
    tiny = with_text(tiny) if name in CONTENT else tiny
    model = get_baseline(name, **params).fit(tiny)
    users = np.arange(tiny.n_users)
    scores = model.score(users, tiny.train)
    half = tiny.n_items // 2
    own = np.where((users % 2 == 0)[:, None], scores[:, :half], scores[:, half:]).mean()
    other = np.where((users % 2 == 0)[:, None], scores[:, half:], scores[:, :half]).mean()
    assert own > other


def test_trained_cllm4rec_beats_popularity(tiny_run: Path, run_dataset: Dataset) -> None:
    """End to end: the tiny trained run ranks the test items of its own data better than popularity."""
    from cllm4rec.serving import load_run

    ours = evaluate(load_run(tiny_run, device="cpu").recommender.fit(run_dataset, split="test"), run_dataset, "test")
    pop = evaluate(get_baseline("pop").fit(run_dataset, split="test"), run_dataset, "test")
    assert ours.metrics["recall@20"] > pop.metrics["recall@20"]
    assert selection_score(ours.metrics) > 1.1 * selection_score(pop.metrics)
