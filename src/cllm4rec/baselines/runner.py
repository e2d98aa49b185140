"""Run a baseline under the CLLM4Rec protocol: tune on validation, then report validation and test.

For each point of the model's grid (minus any parameter fixed by the caller) the model is fit for
"valid" (train only) and ranked on validation; the best point by the selection score (Recall@20 +
Recall@40 + NDCG@100, the rule CLLM4Rec uses) wins. Models with ``refit_for_test`` are then refit for
"test" (train + valid) with the chosen parameters; the others (Multi-VAE) are reused as fitted. Test items
are ranked from each user's train + valid history in both cases.
"""

from __future__ import annotations

import importlib
import itertools
import time
from typing import TYPE_CHECKING, Any

from cllm4rec.baselines.base import BaselineResult, coerce_params
from cllm4rec.baselines.registry import BASELINES
from cllm4rec.core.defaults import DEFAULT_SEED
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.evaluation import Recommender, evaluate, selection_score
from cllm4rec.evaluation.cold import can_score_cold, evaluate_cold, few_interaction_metrics

if TYPE_CHECKING:
    from cllm4rec.data.dataset import Dataset

__all__ = ["baseline_class", "get_baseline", "run_baseline"]


def baseline_class(name: str) -> type:
    """The class registered under ``name``; an unknown name is an error listing the choices."""
    key = name.lower()
    if key not in BASELINES:
        raise CLLM4RecError(f"unknown baseline {name!r}; choose one of: {', '.join(BASELINES)}")
    module, cls = BASELINES[key].target.split(":")
    return getattr(importlib.import_module(module), cls)


def get_baseline(name: str, **params: Any) -> Recommender:
    """An unfitted baseline with ``params`` (strings are converted to each field's type)."""
    cls = baseline_class(name)
    return cls(cls.Params(**coerce_params(cls.Params, params, cls.name)))


def run_baseline(
    name: str,
    dataset: Dataset,
    *,
    seed: int = DEFAULT_SEED,
    progress: bool = True,
    params: dict[str, Any] | None = None,
) -> BaselineResult:
    """Tune ``name`` on validation over its grid, then evaluate the chosen model on test.

    With cold items in ``dataset``, the cold rankings are reported too, and a model that scores cold items
    from their text is tuned on the cold-validation ranking.

    ``params`` fixes hyperparameters (a fixed one is not tuned); ``seed`` goes to models that have one.
    """
    cls = baseline_class(name)
    fixed = coerce_params(cls.Params, dict(params or {}), cls.name)
    if "seed" in cls.Params.__dataclass_fields__:
        fixed.setdefault("seed", seed)
    free = {key: values for key, values in cls.grid.items() if key not in fixed}
    candidates = [dict(fixed, **dict(zip(free, combo, strict=True))) for combo in itertools.product(*free.values())]

    tune_start = time.perf_counter()
    tuning: list[dict[str, Any]] = []
    best: tuple[float, dict[str, Any], Any, float, dict[str, float]] | None = None
    steps = candidates
    if progress and len(candidates) > 1:
        from tqdm.auto import tqdm

        steps = tqdm(candidates, desc=f"tune {cls.name}", unit="config", leave=False)
    for cand in steps:
        model = cls(cls.Params(**cand))
        start = time.perf_counter()
        model.fit(dataset, split="valid", progress=progress)
        fit_seconds = time.perf_counter() - start
        valid = evaluate(model, dataset, "valid").metrics
        row = {"params": model.params.to_dict(), "valid": valid, "fit_seconds": fit_seconds}
        if dataset.cold is not None and can_score_cold(model):  # a content model is chosen for new items
            row["valid-cold"] = evaluate_cold(model, dataset, "valid", seed=seed)["cold"].metrics
        score = selection_score(row.get("valid-cold", valid))
        tuning.append(row)
        if best is None or score > best[0]:
            best = (score, cand, model, fit_seconds, valid)
    tune_seconds = time.perf_counter() - tune_start
    assert best is not None
    _, chosen, model, fit_seconds, valid = best

    if cls.refit_for_test:
        model = cls(cls.Params(**chosen))
        start = time.perf_counter()
        model.fit(dataset, split="test", progress=progress)
        fit_seconds = time.perf_counter() - start
    test = evaluate(model, dataset, "test")
    cold: dict[str, dict[str, float]] = {}
    if dataset.cold is not None:
        cold["valid-cold"] = evaluate_cold(model, dataset, "valid", seed=seed)["cold"].metrics
        both = evaluate_cold(model, dataset, "test", seed=seed)
        cold["test-cold"], cold["test-all"] = both["cold"].metrics, both["all"].metrics
    return BaselineResult(
        name=cls.name,
        params=model.params.to_dict(),
        valid=valid,
        test=test.metrics,
        fit_seconds=fit_seconds,
        score_seconds_per_1k_users=test.score_seconds_per_1k_users,
        tune_seconds=tune_seconds,
        info=dict(getattr(model, "info", {})),
        tuning=tuning if len(tuning) > 1 else [],
        cold=cold,
        few=few_interaction_metrics(test, dataset.train),
    )
