"""The one evaluation harness: any :class:`Recommender` on any split, full ranking (docs/DESIGN.md §6).

Training-time validation, ``cllm4rec evaluate``, ``cllm4rec baseline`` and ``cllm4rec benchmark`` all call
:func:`evaluate`. Users are scored in batches whose (B, J) score matrix stays under a fixed memory budget,
so memory does not grow with the number of users.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data.dataset import evaluation_split
from cllm4rec.evaluation.metrics import DEFAULT_NDCG_KS, DEFAULT_RECALL_KS, Evaluator
from cllm4rec.evaluation.protocol import Recommender

if TYPE_CHECKING:
    from cllm4rec.data.dataset import Dataset

MAX_BATCH_USERS = 4096
SCORE_BUDGET = 1 << 26
"""Scores held at once per batch (64 Mi floats, 256 MiB): the batch shrinks for very large catalogues."""


@dataclass
class Evaluation:
    """Metrics of one recommender on one split, the per-user breakdown and the time spent scoring."""

    split: str
    metrics: dict[str, float]
    evaluator: Evaluator
    score_seconds: float

    @property
    def n_users(self) -> int:
        """Users evaluated (those with held-out items)."""
        return len(self.evaluator.users)

    @property
    def score_seconds_per_1k_users(self) -> float:
        """Seconds inside ``score`` (not metric code) per 1,000 evaluated users."""
        return 1000.0 * self.score_seconds / max(1, self.n_users)

    def per_user(self) -> list[dict[str, Any]]:
        """One row per evaluated user: user index, |held-out| and each metric."""
        return self.evaluator.per_user()


def batch_users(n_items: int) -> int:
    """Users per scoring batch: at most ``MAX_BATCH_USERS``, and at most ``SCORE_BUDGET`` scores."""
    return max(1, min(MAX_BATCH_USERS, SCORE_BUDGET // max(1, n_items)))


def evaluate(
    recommender: Recommender,
    dataset: Dataset,
    split: str = "valid",
    *,
    batch_size: int | None = None,
    progress: bool = False,
    recall_ks: Iterable[int] = DEFAULT_RECALL_KS,
    ndcg_ks: Iterable[int] = DEFAULT_NDCG_KS,
) -> Evaluation:
    """Rank all items for every user of ``split`` with held-out items, known items excluded, and average.

    The history given to ``score`` is what is known for the split (train for validation, train + validation
    for test); the same items are excluded from the ranking.
    """
    name = evaluation_split(split, "evaluation")
    batch_size = batch_users(dataset.n_items) if batch_size is None else batch_size
    if batch_size < 1:
        raise CLLM4RecError(f"batch_size must be positive, got {batch_size}")
    known = dataset.known(name)
    evaluator = Evaluator(dataset.split(name), known, recall_ks, ndcg_ks)
    starts = range(0, len(evaluator.users), batch_size)
    if progress and len(starts) > 1:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"evaluate {name}", unit="batch", leave=False)
    spent = 0.0
    for start in starts:
        users = evaluator.users[start : start + batch_size]
        t0 = time.perf_counter()
        scores = recommender.score(users, known[users])
        spent += time.perf_counter() - t0
        evaluator.add(users, scores)
    return Evaluation(name, evaluator.result(), evaluator, spent)
