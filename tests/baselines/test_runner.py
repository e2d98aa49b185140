"""run_baseline: validation search, refit for test, result record."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cllm4rec.baselines.base import BaselineResult
from cllm4rec.baselines.ease import EASE
from cllm4rec.baselines.runner import run_baseline
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data import Dataset
from cllm4rec.evaluation import evaluate, selection_score


def test_tunes_on_validation_and_refits_for_test(tiny: Dataset) -> None:
    result = run_baseline("ease", tiny, progress=False)
    assert isinstance(result, BaselineResult)
    assert [row["params"]["lam"] for row in result.tuning] == list(EASE.grid["lam"])
    scores = [selection_score(row["valid"]) for row in result.tuning]
    assert result.params["lam"] == EASE.grid["lam"][int(np.argmax(scores))]
    assert result.valid == result.tuning[int(np.argmax(scores))]["valid"]
    # test numbers = the chosen lambda refit on train + valid, ranked from train + valid
    refit = EASE(EASE.Params(lam=result.params["lam"])).fit(tiny, split="test")
    expected = evaluate(refit, tiny, "test").metrics
    assert result.test == pytest.approx(expected)
    assert result.fit_seconds > 0 and result.score_seconds_per_1k_users > 0


def test_fixed_params_are_not_tuned(tiny: Dataset) -> None:
    result = run_baseline("ease", tiny, progress=False, params={"lam": "3"})
    assert result.params == {"lam": 3.0} and result.tuning == []
    with pytest.raises(CLLM4RecError, match="unknown parameter"):
        run_baseline("ease", tiny, progress=False, params={"k": 3})


def test_seed_reaches_models_that_have_one(tiny: Dataset) -> None:
    params = {"max_epochs": 2, "hidden": 8, "latent": 4}
    result = run_baseline("multivae", tiny, seed=5, progress=False, params=params)
    assert result.params["seed"] == 5 and result.info["epochs_run"] == 2
    again = run_baseline("multivae", tiny, seed=5, progress=False, params=params)
    assert again.test == result.test


def test_to_dict_is_json(tiny: Dataset) -> None:
    result = run_baseline("itemknn", tiny, progress=False)
    data = json.loads(json.dumps(result.to_dict()))
    assert set(data) >= {"name", "params", "valid", "test", "fit_seconds", "score_seconds_per_1k_users"}
    assert data["valid"]["n_users"] == tiny.n_users and set(data["test"]) >= {"recall@20", "ndcg@100"}
