"""A trained CLLM4Rec that also scores a dataset's cold items, placed from their text (docs/DESIGN.md §11).

``score`` ranks the warm catalogue as the plain recommender does; ``score_cold(users, history, split)`` ranks
the cold items of ``split`` (the contract of :mod:`cllm4rec.evaluation.cold`). The cold items of a split are
placed on first use (:func:`cllm4rec.model.new_items.place_new_items`), appended after the warm items of the
same model: warm rows are untouched, so one forward pass scores warm and cold items together, and the warm
scores are exactly those of the model without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.model.new_items import PlacementOptions, place_new_items, shrink_item_tables
from cllm4rec.model.recommender import CLLM4RecRecommender

if TYPE_CHECKING:
    from cllm4rec.data import Dataset


class NewItemsRecommender:
    """Wraps a :class:`CLLM4RecRecommender`; the model grows by the cold items of one split at a time."""

    name = "cllm4rec"

    def __init__(self, base: CLLM4RecRecommender, options: PlacementOptions | None = None) -> None:
        self.base, self.options = base, options or PlacementOptions()
        self.n_warm = base.n_items
        self.dataset: Dataset | None = None
        self.placed: str | None = None
        self.timings: dict[str, dict[str, float]] = {}
        self._cache: tuple[bytes, np.ndarray] | None = None

    def fit(self, dataset: Dataset, *, split: str = "valid", progress: bool = False) -> NewItemsRecommender:
        self.restore()
        self.base.fit(dataset, split=split, progress=progress)
        self.dataset = dataset
        return self

    def _place(self, split: str) -> None:
        if self.placed == split:
            return
        if self.dataset is None or self.dataset.cold is None:
            raise CLLM4RecError("fit this recommender on a dataset with cold items first")
        self.restore()
        cold = self.dataset.cold.subset(split)
        counts = np.asarray(self.dataset.train.sum(axis=0)).ravel()
        known = self.dataset.known(split)
        states = None
        if self.options.fit == "auto":  # the map is chosen through the users' head states (new_items._choose_map)
            states = self.base.head_states(np.arange(self.dataset.n_users), known)
        self.timings[split] = place_new_items(
            self.base.model,
            cold.item_text,
            self.dataset.item_text,
            counts,
            self.options,
            user_states=states,
            interactions=known,
            progress=self.base.progress,
        )
        self.base.tok = self.base.model.id_tokenizer()
        self.placed, self._cache = split, None

    def restore(self) -> None:
        """Drop any placed cold items: the model is the warm one again, row for row."""
        model = self.base.model
        if model.n_items == self.n_warm:
            return
        shrink_item_tables(model, self.n_warm)
        self.base.tok = model.id_tokenizer()
        self.placed, self._cache = None, None

    def _all_scores(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        history = sp.csr_matrix(history)
        n_total = self.base.n_items
        if history.shape[1] == self.n_warm and n_total > self.n_warm:
            history = sp.hstack([history, sp.csr_matrix((history.shape[0], n_total - self.n_warm))]).tocsr()
        key = str((n_total, self.placed)).encode() + np.asarray(users).tobytes()
        key += history.indptr.tobytes() + history.indices.tobytes()
        if self._cache is None or self._cache[0] != key:
            with torch.inference_mode():
                self._cache = (key, self.base.score(users, history))
        return self._cache[1]

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        if sp.csr_matrix(history).shape[1] != self.n_warm:
            raise CLLM4RecError(f"history must have {self.n_warm} columns (the warm items)")
        return self._all_scores(users, history)[:, : self.n_warm]

    def score_cold(self, users: np.ndarray, history: sp.csr_matrix, split: str) -> np.ndarray:
        """Scores of the cold items of ``split``, placed on first use; ``history`` over the warm items."""
        self._place(split)
        return self._all_scores(users, history)[:, self.n_warm :]
