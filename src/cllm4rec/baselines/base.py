"""What the baselines share: typed parameters, argument checks and the result record of a run.

Each baseline follows the :class:`cllm4rec.evaluation.Recommender` contract (``fit`` then ``score``), so
CLLM4Rec and the baselines go through the same split, the same exclusion of known items and the same harness.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from cllm4rec.core.coerce import coerce
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data.dataset import evaluation_split

if TYPE_CHECKING:
    from cllm4rec.data.dataset import Dataset

__all__ = ["BaselineResult", "ParamsBase", "check_history", "coerce_params", "fit_matrix"]


@dataclass
class BaselineResult:
    """One baseline run: chosen hyperparameters, validation and test metrics, and timings.

    ``fit_seconds`` is the fit that produced the test numbers (the refit for models refit on train+valid);
    ``tune_seconds`` covers the whole validation search; ``score_seconds_per_1k_users`` is the time spent in
    ``score`` (not in metric code) while ranking the test users, per 1,000 users.
    """

    name: str
    params: dict[str, Any]
    valid: dict[str, float]
    test: dict[str, float]
    fit_seconds: float
    score_seconds_per_1k_users: float
    tune_seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    tuning: list[dict[str, Any]] = field(default_factory=list)
    cold: dict[str, dict[str, float]] = field(default_factory=dict)
    """With cold items: ``valid-cold``, ``test-cold`` and ``test-all`` rankings (evaluation/cold.py)."""
    few: dict[str, float] = field(default_factory=dict)
    """Test metrics over the users with at most 5 training interactions."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (plain floats, ints, strings)."""
        return _plain(dataclasses.asdict(self))


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def fit_matrix(dataset: Dataset, split: str) -> sp.csr_matrix:
    """The interactions a model may learn from when it will be evaluated on ``split``."""
    return dataset.known(evaluation_split(split, "fitting a baseline"))


def check_history(users: np.ndarray, history: sp.csr_matrix, n_items: int | None) -> sp.csr_matrix:
    """Validate a score() call: the model is fitted and ``history`` has one row per user and J columns."""
    if n_items is None:
        raise CLLM4RecError("the model is not fitted yet: call fit() first")
    history = sp.csr_matrix(history)
    if history.shape != (len(users), n_items):
        raise CLLM4RecError(f"history has shape {history.shape}, expected ({len(users)}, {n_items})")
    return history


def coerce_params(params_cls: type, raw: dict[str, Any], model: str) -> dict[str, Any]:
    """Check names against the parameter dataclass and convert strings (from the CLI) to the field's type."""
    fields = {f.name: f for f in dataclasses.fields(params_cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise CLLM4RecError(
            f"unknown parameter(s) for {model}: {', '.join(unknown)}; valid: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(params_cls)
    return {key: coerce(hints[key], value, f"{model} parameter {key}") for key, value in raw.items()}


class ParamsBase:
    """Mixin for frozen parameter dataclasses: a plain dict view for reports."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]
