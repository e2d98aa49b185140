"""CLLM4Rec: a collaborative large language model for recommender systems.

The package is the user's API; importing it is cheap (no torch, no numpy): each name below is imported on
first use (PEP 562). ::

    import cllm4rec

    data = cllm4rec.prepare_dataset("movielens", "ml-100k", out="data/ml100k")
    result = cllm4rec.train(data, "quick", out="runs/ml100k")
    run = cllm4rec.load_run(result.run_dir)
    print(cllm4rec.recommend(run, [cllm4rec.Query(user="196")], k=10))

Everything else is internal, one package per layer (docs/DESIGN.md §8): ``core``, ``data``,
``tokenization``, ``backbone``, ``model``, ``evaluation``, ``runs``, ``training`` / ``serving`` /
``baselines``, ``cli``; :mod:`cllm4rec.api` holds the wrappers.
"""

from __future__ import annotations

import importlib
from typing import Any

from cllm4rec.core.errors import CLLM4RecError

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    # data
    "Dataset": "cllm4rec.data",
    "prepare_dataset": "cllm4rec.api",
    "load_dataset": "cllm4rec.api",
    # config
    "RunConfig": "cllm4rec.runs.config",
    "load_config": "cllm4rec.api",
    "available_presets": "cllm4rec.runs.config",
    # training and evaluation
    "train": "cllm4rec.api",
    "TrainResult": "cllm4rec.api",
    "evaluate": "cllm4rec.api",
    "CLLM4Rec": "cllm4rec.api",
    # serving
    "load_run": "cllm4rec.serving",
    "recommend": "cllm4rec.serving",
    "Query": "cllm4rec.serving",
    "Recommendation": "cllm4rec.serving",
    # baselines
    "Popularity": "cllm4rec.baselines.pop",
    "ItemKNN": "cllm4rec.baselines.itemknn",
    "EASE": "cllm4rec.baselines.ease",
    "MultiVAE": "cllm4rec.baselines.multivae",
    "get_baseline": "cllm4rec.baselines.runner",
    "run_baseline": "cllm4rec.baselines.runner",
    "TfidfKNN": "cllm4rec.baselines.content_knn",
    "LLMEmbeddingKNN": "cllm4rec.baselines.content_knn",
    "add_items": "cllm4rec.serving.add_items",
    "evaluate_cold": "cllm4rec.evaluation.cold",
}
"""Public name -> the module it is imported from on first use."""

__all__ = [
    "CLLM4RecError",
    "__version__",
    "Dataset",
    "prepare_dataset",
    "load_dataset",
    "RunConfig",
    "load_config",
    "available_presets",
    "train",
    "TrainResult",
    "evaluate",
    "CLLM4Rec",
    "load_run",
    "recommend",
    "Query",
    "Recommendation",
    "Popularity",
    "ItemKNN",
    "EASE",
    "MultiVAE",
    "get_baseline",
    "run_baseline",
    "TfidfKNN",
    "LLMEmbeddingKNN",
    "add_items",
    "evaluate_cold",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cllm4rec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
