"""EASE (Steck, WWW 2019): a closed-form linear item-item autoencoder with a zero diagonal.

B = I - P / diag(P) column-wise, P = (X^T X + lambda I)^-1, so B_jj = 0 and scores = x_u B. The one
hyperparameter lambda is tuned on validation (fit on train); the test numbers come from a refit on
train + valid with the chosen lambda, scored from each user's train + valid history. Memory is O(J^2): fine
up to a few tens of thousands of items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from cllm4rec.baselines.base import ParamsBase, check_history, fit_matrix
from cllm4rec.core.errors import CLLM4RecError

if TYPE_CHECKING:
    from cllm4rec.data.dataset import Dataset


@dataclass(frozen=True)
class EASEParams(ParamsBase):
    lam: float = 200.0
    """L2 penalty on the item-item weights; larger pulls scores toward popularity. Tuned on validation."""

    def __post_init__(self) -> None:
        if not self.lam > 0:
            raise CLLM4RecError(f"ease: lam must be positive, got {self.lam}")


class EASE:
    """Item-item weights from one regularised Gram-matrix inverse."""

    name = "ease"
    Params = EASEParams
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {"lam": (50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)}
    refit_for_test: ClassVar[bool] = True

    def __init__(self, params: EASEParams | None = None) -> None:
        self.params = params or EASEParams()
        self.weights: np.ndarray | None = None  # (J, J), zero diagonal

    def fit(self, dataset: Dataset, *, split: str = "valid", progress: bool = False) -> EASE:
        x = fit_matrix(dataset, split).astype(np.float64)
        gram = (x.T @ x).toarray()  # (J, J)
        gram[np.diag_indices_from(gram)] += self.params.lam
        p = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)  # SPD, well conditioned by lambda
        weights = p / (-np.diag(p))[None, :]
        weights[np.diag_indices_from(weights)] = 0.0
        # C order: the inverse comes back column-major, and scipy would copy it on every score() call
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)
        return self

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        history = check_history(users, history, None if self.weights is None else self.weights.shape[0])
        return np.asarray(history @ self.weights, dtype=np.float32)
