"""Baselines on real ML-100K (rating > 3, seeded 80/10/10 split): reference points and ordering."""

from __future__ import annotations

import pytest

from cllm4rec.baselines.base import BaselineResult
from cllm4rec.baselines.runner import run_baseline
from cllm4rec.data import Dataset

# Reference points on the seed-98765 split (test): popularity Recall@20 about 0.19; EASE lambda=200
# Recall@20 about 0.40 and NDCG@100 about 0.37.
TOLERANCE = 0.03


@pytest.fixture(scope="module")
def pop(ml100k: Dataset) -> BaselineResult:
    return run_baseline("pop", ml100k, progress=False)


def test_split_shape(ml100k: Dataset) -> None:
    assert (ml100k.n_users, ml100k.n_items) == (942, 1447)
    assert ml100k.train.nnz + ml100k.valid.nnz + ml100k.test.nnz == 55376  # ratings > 3 in u.data
    assert ml100k.valid.nnz == ml100k.test.nnz


def test_popularity_reference(pop: BaselineResult) -> None:
    assert pop.test["n_users"] == 942
    assert pop.test["recall@20"] == pytest.approx(0.19, abs=TOLERANCE)


def test_ease_reference(ml100k: Dataset, pop: BaselineResult) -> None:
    ease = run_baseline("ease", ml100k, progress=False, params={"lam": 200})
    assert ease.test["recall@20"] == pytest.approx(0.40, abs=TOLERANCE)
    assert ease.test["ndcg@100"] == pytest.approx(0.37, abs=TOLERANCE)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("itemknn", {}),
        ("ease", {}),
        pytest.param("multivae", {"max_epochs": 30, "patience": 5}, marks=pytest.mark.slow),
    ],
)
def test_beats_popularity(ml100k: Dataset, pop: BaselineResult, name: str, params: dict) -> None:
    result = run_baseline(name, ml100k, progress=False, params=params)
    for split in ("valid", "test"):
        for key in ("recall@20", "recall@40", "ndcg@100"):
            assert getattr(result, split)[key] > getattr(pop, split)[key] + 0.05, (split, key)
