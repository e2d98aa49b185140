"""Classic baselines under the same split, exclusion rule and harness as CLLM4Rec.

Popularity, ItemKNN, EASE and Multi-VAE follow the :class:`cllm4rec.evaluation.Recommender` contract;
:func:`cllm4rec.baselines.runner.run_baseline` tunes one on validation and reports validation and test
metrics with timings. This package itself only exports the registry (no numpy, scipy or torch import), so
the command line can list the choices instantly.
"""

from cllm4rec.baselines.registry import BASELINES, BaselineEntry

__all__ = ["BASELINES", "BaselineEntry"]
