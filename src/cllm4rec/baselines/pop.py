"""Popularity: every user gets the items with the most interactions in the fitted data.

The floor any personalised model must clear. Fitted on train for validation and on train + valid for test
(no hyperparameters, so nothing is tuned).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from cllm4rec.baselines.base import ParamsBase, check_history, fit_matrix

if TYPE_CHECKING:
    from cllm4rec.data.dataset import Dataset


@dataclass(frozen=True)
class PopularityParams(ParamsBase):
    """Popularity has no hyperparameters."""


class Popularity:
    """Scores = interaction counts per item (the same for every user)."""

    name = "pop"
    Params = PopularityParams
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {}
    refit_for_test: ClassVar[bool] = True

    def __init__(self, params: PopularityParams | None = None) -> None:
        self.params = params or PopularityParams()
        self.counts: np.ndarray | None = None

    def fit(self, dataset: Dataset, *, split: str = "valid", progress: bool = False) -> Popularity:
        self.counts = np.asarray(fit_matrix(dataset, split).sum(axis=0), dtype=np.float32).ravel()
        return self

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        check_history(users, history, None if self.counts is None else len(self.counts))
        return np.tile(self.counts, (len(users), 1))
