"""Classic baselines under the same split, exclusion rule and metric code as CLLM4Rec.

Popularity, ItemKNN, EASE and Multi-VAE share one contract (``Recommender``: ``fit`` then ``score``);
``run_baseline`` tunes on validation and reports validation and test metrics with timings. Model classes
are imported on demand (``get_baseline``), so importing this package does not import torch.
"""

from cllm4rec.baselines.base import BaselineResult, Recommender
from cllm4rec.baselines.runner import BASELINES, baseline_class, get_baseline, run_baseline

__all__ = ["BASELINES", "BaselineResult", "Recommender", "baseline_class", "get_baseline", "run_baseline"]
