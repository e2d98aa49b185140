"""Content kNN: items as vectors of their text, users as the mean of their history's vectors, cosine scores.

The classic answer to new items (docs/DESIGN.md §11): it needs no interaction with an item to score it, so it
ranks cold items (``score_cold``) exactly as warm ones. Two item encoders:

- ``tfidf``: TF-IDF of the item's text fields (scikit-learn), fitted on every item's text, warm and cold;
  text is known for new items, so the vocabulary and IDF may use it.
- ``llmknn``: the frozen backbone's final hidden states mean-pooled over the item's text tokens, centred
  on the catalogue's mean (a language model's states share one dominant direction, which would make every
  cosine near 1): the "LLM embeddings for a classic model" approach. One forward pass per item text, cached
  between the tuning and the test fit.

A user with an empty history gets all-zero scores (every item ties).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from cllm4rec.baselines.base import ParamsBase, check_history
from cllm4rec.core.defaults import DEFAULT_BACKBONE
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data.dataset import evaluation_split
from cllm4rec.data.text import item_document

if TYPE_CHECKING:
    from cllm4rec.data.dataset import Dataset


def catalogue_texts(dataset: Dataset) -> tuple[list[str], int]:
    """Every item's text, warm items first, then the cold items; and the number of warm items."""
    texts = [item_document(fields) for fields in dataset.item_text]
    if dataset.cold is not None:
        texts += [item_document(fields) for fields in dataset.cold.item_text]
    return texts, dataset.n_items


class _ContentKNN:
    """Cosine between a user's mean history vector and each item's vector; subclasses encode the texts."""

    name = "content-knn"
    refit_for_test: ClassVar[bool] = False  # nothing is learned from interactions
    params: Any

    def __init__(self) -> None:
        self.vectors: np.ndarray | sp.csr_matrix | None = None  # (J + C, D), rows L2-normalised
        self.n_warm: int | None = None
        self.cold_columns: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str], progress: bool) -> np.ndarray | sp.csr_matrix:
        raise NotImplementedError

    def fit(self, dataset: Dataset, *, split: str = "valid", progress: bool = False) -> _ContentKNN:
        evaluation_split(split, f"fitting {self.name}")  # the texts are the same for every split
        texts, n_warm = catalogue_texts(dataset)
        if not any(texts):
            raise CLLM4RecError(f"{self.name} needs item text, and this dataset has none")
        self.vectors = normalize(self.encode(texts, progress))
        self.n_warm = n_warm
        if dataset.cold is not None:
            self.cold_columns = {s: n_warm + dataset.cold.columns(s) for s in ("valid", "test")}
        return self

    def _profiles(self, history: sp.csr_matrix) -> np.ndarray | sp.csr_matrix:
        assert self.vectors is not None and self.n_warm is not None
        counts = np.asarray(history.sum(axis=1)).ravel()
        profile = sp.diags(1.0 / np.maximum(counts, 1.0)) @ history @ self.vectors[: self.n_warm]
        return normalize(profile)

    def _scores(self, history: sp.csr_matrix, rows: slice | np.ndarray) -> np.ndarray:
        assert self.vectors is not None
        scores = self._profiles(history) @ self.vectors[rows].T
        return np.asarray(scores.todense() if sp.issparse(scores) else scores, dtype=np.float32)

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        history = check_history(users, history, self.n_warm)
        return self._scores(history, slice(0, self.n_warm))

    def score_cold(self, users: np.ndarray, history: sp.csr_matrix, split: str) -> np.ndarray:
        """Scores of the dataset's cold items of ``split`` (valid or test)."""
        history = check_history(users, history, self.n_warm)
        if split not in self.cold_columns:
            raise CLLM4RecError(f"the dataset this model was fitted on has no cold {split} items")
        return self._scores(history, self.cold_columns[split])


@dataclass(frozen=True)
class TfidfParams(ParamsBase):
    ngrams: int = 1
    """Longest word n-gram (1: words only, 2: words and pairs). Tuned on validation."""
    min_df: int = 1
    """Ignore terms in fewer items than this."""

    def __post_init__(self) -> None:
        if self.ngrams < 1 or self.min_df < 1:
            raise CLLM4RecError("tfidf: ngrams and min_df must be at least 1")


class TfidfKNN(_ContentKNN):
    """Content kNN on TF-IDF vectors (sublinear term frequency)."""

    name = "tfidf"
    Params = TfidfParams
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {"ngrams": (1, 2)}

    def __init__(self, params: TfidfParams | None = None) -> None:
        super().__init__()
        self.params = params or TfidfParams()

    def encode(self, texts: list[str], progress: bool) -> sp.csr_matrix:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, self.params.ngrams), min_df=self.params.min_df)
        return vectorizer.fit_transform(texts).tocsr().astype(np.float32)


@dataclass(frozen=True)
class LLMKNNParams(ParamsBase):
    backbone: str = DEFAULT_BACKBONE
    """The frozen language model whose hidden states encode the texts (default: CLLM4Rec's own)."""
    max_length: int = 64
    """Text tokens read per item."""
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.max_length < 1 or self.batch_size < 1:
            raise CLLM4RecError("llmknn: max_length and batch_size must be at least 1")


class LLMEmbeddingKNN(_ContentKNN):
    """Content kNN on the frozen backbone's mean-pooled final hidden states."""

    name = "llmknn"
    Params = LLMKNNParams
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {}
    _cache: ClassVar[dict[tuple[Any, ...], np.ndarray]] = {}

    def __init__(self, params: LLMKNNParams | None = None) -> None:
        super().__init__()
        self.params = params or LLMKNNParams()

    def encode(self, texts: list[str], progress: bool) -> np.ndarray:
        key = (self.params.backbone, self.params.max_length, hash(tuple(texts)))
        if key not in self._cache:  # the tuning fit and the test fit read the same texts
            from cllm4rec.backbone import load_backbone
            from cllm4rec.model.text_states import mean_pooled_states

            backbone = load_backbone(self.params.backbone)
            self._cache.clear()
            self._cache[key] = mean_pooled_states(
                backbone, texts, max_length=self.params.max_length, batch_size=self.params.batch_size, progress=progress
            )
        states = self._cache[key]
        return states - states.mean(0, keepdims=True)
