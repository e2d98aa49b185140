"""Cold-start evaluation: new items ranked from what a model can know of them (docs/DESIGN.md §11).

Two rankings beside the warm one (:func:`cllm4rec.evaluation.evaluate`), over the cold items of a split
(:mod:`cllm4rec.data.cold`):

- ``cold``: the split's cold items ranked among themselves, for the users with at least one interaction
  with them (the protocol of MD-CVAE); nothing is excluded, since nobody has seen a cold item.
- ``all``: warm and cold items of the split together, held out = the warm split plus the cold interactions;
  the user's known warm items are excluded as in the warm ranking.

A recommender that can score items it was not trained on has ``score_cold(users, history, split)`` returning
(B, number of the split's cold items). One that cannot (EASE, ItemKNN, Multi-VAE) is ranked as it is: cold
items in a seeded random order, below every warm item.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from cllm4rec.core.defaults import DEFAULT_SEED
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data.dataset import evaluation_split
from cllm4rec.evaluation.harness import Evaluation, batch_users
from cllm4rec.evaluation.metrics import DEFAULT_NDCG_KS, DEFAULT_RECALL_KS, Evaluator
from cllm4rec.evaluation.protocol import Recommender

if TYPE_CHECKING:
    from cllm4rec.data.dataset import Dataset

RANKINGS = ("cold", "all")


def can_score_cold(recommender: object) -> bool:
    """Whether ``recommender`` scores items from their content (it has ``score_cold``)."""
    return callable(getattr(recommender, "score_cold", None))


def random_cold_scores(warm: np.ndarray, n_cold: int, rng: np.random.Generator) -> np.ndarray:
    """Scores for cold items a model cannot place: a random order, every one below each row's warm items."""
    floor = warm.min(axis=1, keepdims=True) if warm.shape[1] else np.zeros((len(warm), 1), dtype=np.float32)
    return (floor - 1.0 - rng.random((len(warm), n_cold))).astype(np.float32)


def evaluate_cold(
    recommender: Recommender,
    dataset: Dataset,
    split: str = "test",
    *,
    batch_size: int | None = None,
    progress: bool = False,
    seed: int = DEFAULT_SEED,
    recall_ks: Iterable[int] = DEFAULT_RECALL_KS,
    ndcg_ks: Iterable[int] = DEFAULT_NDCG_KS,
) -> dict[str, Evaluation]:
    """The ``cold`` and ``all`` rankings of ``split`` (see the module docstring), each an :class:`Evaluation`."""
    name = evaluation_split(split, "cold-start evaluation")
    if dataset.cold is None:
        raise CLLM4RecError("this dataset has no cold items (prepare it with 'data prepare --cold-items F')")
    cols = dataset.cold.columns(name)
    cold_heldout = dataset.cold.interactions[:, cols].tocsr()  # (I, C)
    known = dataset.known(name)  # (I, J) warm
    n_users, n_cold = cold_heldout.shape
    cold_eval = Evaluator(cold_heldout, sp.csr_matrix((n_users, n_cold), dtype=np.float32), recall_ks, ndcg_ks)
    all_heldout = sp.hstack([dataset.split(name), cold_heldout]).tocsr()
    all_known = sp.hstack([known, sp.csr_matrix((n_users, n_cold), dtype=np.float32)]).tocsr()
    all_eval = Evaluator(all_heldout, all_known, recall_ks, ndcg_ks)
    users_all = all_eval.users  # a superset of the cold evaluator's users
    batch_size = batch_users(dataset.n_items + n_cold) if batch_size is None else batch_size
    rng = np.random.default_rng(seed)
    starts = range(0, len(users_all), batch_size)
    if progress and len(starts) > 1:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"evaluate cold {name}", unit="batch", leave=False)
    spent = 0.0
    scores_cold = getattr(recommender, "score_cold", None)
    for start in starts:
        users = users_all[start : start + batch_size]
        t0 = time.perf_counter()
        warm = np.asarray(recommender.score(users, known[users]), dtype=np.float32)
        if scores_cold is not None:
            cold = np.asarray(scores_cold(users, known[users], name), dtype=np.float32)
            if cold.shape != (len(users), n_cold):
                raise CLLM4RecError(f"score_cold returned shape {cold.shape}, expected {(len(users), n_cold)}")
        else:
            cold = random_cold_scores(warm, n_cold, rng)
        spent += time.perf_counter() - t0
        cold_eval.add(users, cold)
        all_eval.add(users, np.concatenate([warm, cold], axis=1))
    return {
        "cold": Evaluation(f"{name}-cold", cold_eval.result(), cold_eval, spent),
        "all": Evaluation(f"{name}-all", all_eval.result(), all_eval, spent),
    }


def few_interaction_metrics(evaluation: Evaluation, train: sp.csr_matrix, max_items: int = 5) -> dict[str, float]:
    # users with few interactions are where item-item models are weakest and text should help most (§11)
    """Mean metrics over the evaluated users with at most ``max_items`` training interactions (and how many)."""
    lengths = np.diff(sp.csr_matrix(train).indptr)
    rows = [r for r in evaluation.per_user() if lengths[int(r["user"])] <= max_items]
    out = {key: float(np.mean([r[key] for r in rows])) if rows else 0.0 for key in evaluation.evaluator.keys}
    out["n_users"] = len(rows)
    return out
