"""The recommender contract every model follows: CLLM4Rec and each baseline (docs/DESIGN.md §6)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import scipy.sparse as sp

    from cllm4rec.data.dataset import Dataset


@runtime_checkable
class Recommender(Protocol):
    """Fit on what is known when evaluating a split; score all items for a batch of users.

    ``users`` are dataset row indices; an index the model does not know (e.g. -1 for someone known only by
    their history) must still get a full, finite score row from ``history``.
    """

    name: str

    def fit(self, dataset: Dataset, *, split: str = "valid", progress: bool = False) -> Recommender:
        """Fit with what is known when ranking ``split``: train for "valid", train + valid for "test"."""
        ...

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """(B, J) scores for ``users`` given their known items (``history``, B rows); higher is better."""
        ...
