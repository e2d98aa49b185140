"""Top-K ranking metrics under the paper's protocol (docs/DESIGN.md §6), shared by CLLM4Rec and every baseline.

Full ranking over all J items; the user's known items (train, plus valid when testing) are excluded;
Recall@K = |top-K ∩ held-out| / min(K, |held-out|); NDCG@K with binary relevance, where the ideal DCG
places min(K, |held-out|) relevant items at the top. Only users with held-out items are evaluated.

Everything here is numpy; a ``torch.Tensor`` of scores is accepted (duck-typed), and ``topk_items`` imports
torch lazily for its partial top-k, so importing this module does not import torch. Metrics are computed for
all users of a batch at once (no loop per user).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from cllm4rec.core.errors import CLLM4RecError

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_NDCG_KS",
    "DEFAULT_RECALL_KS",
    "DEFAULT_SELECTION_KEYS",
    "REPORT_KEYS",
    "Evaluator",
    "metric_title",
    "ndcg_at_k",
    "recall_at_k",
    "selection_score",
    "topk_items",
]

DEFAULT_RECALL_KS: tuple[int, ...] = (20, 40, 100)
DEFAULT_NDCG_KS: tuple[int, ...] = (20, 100)
REPORT_KEYS: tuple[str, ...] = tuple(f"recall@{k}" for k in DEFAULT_RECALL_KS) + tuple(
    f"ndcg@{k}" for k in DEFAULT_NDCG_KS
)
"""Every metric computed by default, in report order."""
DEFAULT_SELECTION_KEYS: tuple[str, ...] = ("recall@20", "recall@40", "ndcg@100")
"""The paper's headline metrics; their sum picks the best checkpoint and the baselines' hyperparameters."""


def metric_title(key: str) -> str:
    """``recall@20`` -> ``Recall@20``, ``ndcg@100`` -> ``NDCG@100`` (table headers)."""
    kind, _, k = key.partition("@")
    return f"{'NDCG' if kind == 'ndcg' else kind.capitalize()}@{k}"


Heldout = sp.csr_matrix | Sequence[np.ndarray]


def _as_numpy_scores(scores: np.ndarray | torch.Tensor) -> np.ndarray:
    """A float (B, J) array we may modify in place."""
    if hasattr(scores, "detach"):  # a torch tensor; .float() also handles bf16/fp16
        scores = scores.detach().float().cpu().numpy()
    arr = np.asarray(scores)
    arr = arr.astype(np.float64 if arr.dtype == np.float64 else np.float32, copy=True)
    if arr.ndim != 2:
        raise CLLM4RecError(f"scores must be a (users, items) matrix, got shape {arr.shape}")
    return arr


def topk_items(scores: np.ndarray | torch.Tensor, k: int, exclude: sp.csr_matrix | None = None) -> np.ndarray:
    """The ``k`` best items per row, best first, as a (B, k) int64 array.

    Items present in row b of ``exclude`` (same B rows as ``scores``) get -inf first, and NaN scores rank
    like -inf, so they only appear when fewer than k other items exist. Ties go to the lower item index,
    which makes rankings reproducible across platforms (a partial top-k alone is not stable): rows whose
    k-th score is tied with items left out are completed with the lowest-index tied items, all rows at once.
    ``k`` is clipped to J.
    """
    s = _as_numpy_scores(scores)
    n_rows, n_items = s.shape
    if k < 1:
        raise CLLM4RecError(f"k must be positive, got {k}")
    k = min(k, n_items)
    s[np.isnan(s)] = -np.inf
    if exclude is not None:
        exclude = sp.csr_matrix(exclude)
        if exclude.shape != s.shape:
            raise CLLM4RecError(f"exclude has shape {exclude.shape}, scores have shape {s.shape}")
        rows = np.repeat(np.arange(n_rows), np.diff(exclude.indptr))
        s[rows, exclude.indices] = -np.inf
    if n_rows == 0:
        return np.zeros((0, k), dtype=np.int64)
    if 4 * k >= n_items:  # a full stable sort is cheap enough and exact
        return np.argsort(-s, axis=1, kind="stable")[:, :k].astype(np.int64)

    import torch  # lazily: torch.topk finds the top-k set several times faster than np.argpartition

    part = torch.topk(torch.from_numpy(s), k, dim=1, sorted=False).indices.numpy()  # up to boundary ties
    kth = np.take_along_axis(s, part, axis=1).min(axis=1)  # the k-th largest score per row
    tied = np.flatnonzero((s >= kth[:, None]).sum(axis=1) > k)  # argpartition chose among ties arbitrarily
    for start in range(0, len(tied), TIE_ROWS):
        rows = tied[start : start + TIE_ROWS]
        part[rows] = _lowest_index_topk(s[rows], kth[rows], k)
    part.sort(axis=1)  # index order, so the stable sort below breaks ties by lower index
    order = np.argsort(-np.take_along_axis(s, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int64)


TIE_ROWS = 512
"""Rows with ties at the top-k boundary resolved at once (bounds the (rows, J) temporaries)."""


def _lowest_index_topk(s: np.ndarray, kth: np.ndarray, k: int) -> np.ndarray:
    """The top-k set of each row of ``s`` (R, J) whose k-th largest score is ``kth`` (R,), ties at the
    boundary going to the lowest indices: every item above ``kth``, then the first items equal to it.
    (R, k), ascending item order."""
    above = s > kth[:, None]  # (R, J)
    equal = s == kth[:, None]  # (R, J)
    need = k - above.sum(axis=1)  # (R,) slots left for the items tied at the boundary
    take = above | (equal & (np.cumsum(equal, axis=1) <= need[:, None]))  # exactly k per row
    return np.nonzero(take)[1].reshape(s.shape[0], k)  # row-major, so each row comes out in index order


def _heldout_csr(heldout: Heldout, n_rows: int, n_cols: int) -> sp.csr_matrix:
    if sp.issparse(heldout):
        mat = sp.csr_matrix(heldout)
        if mat.shape[0] != n_rows:
            raise CLLM4RecError(f"held-out matrix has {mat.shape[0]} rows, ranking has {n_rows}")
        return mat
    if len(heldout) != n_rows:
        raise CLLM4RecError(f"{len(heldout)} held-out lists for {n_rows} ranked users")
    arrays = [np.unique(np.asarray(h, dtype=np.int64)) for h in heldout]
    indptr = np.concatenate([[0], np.cumsum([len(a) for a in arrays])])
    indices = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
    width = max(n_cols, int(indices.max()) + 1 if len(indices) else 0)
    return sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(n_rows, width))


def _hits(ranked: np.ndarray, heldout: Heldout, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(B, min(k, ranked width)) relevance of each ranked item, and |held-out| per row."""
    ranked = np.asarray(ranked, dtype=np.int64)
    if ranked.ndim != 2:
        raise CLLM4RecError(f"ranked must be a (users, k) matrix, got shape {ranked.shape}")
    if k < 1:
        raise CLLM4RecError(f"k must be positive, got {k}")
    top = ranked[:, :k]
    n_cols = int(top.max()) + 1 if top.size else 0
    mat = _heldout_csr(heldout, ranked.shape[0], n_cols)
    mat.sum_duplicates()
    return membership(top, mat), np.diff(mat.indptr)


def membership(ranked: np.ndarray, heldout: sp.csr_matrix) -> np.ndarray:
    """(B, K) bool: whether ``ranked[b, r]`` is in row b of ``heldout``, for all rows at once.

    Each (row, item) pair becomes one integer ``row * width + item``, so a single sorted search over the
    held-out pairs answers every membership test (no loop per user)."""
    n_rows = ranked.shape[0]
    if not ranked.size or not heldout.nnz:
        return np.zeros(ranked.shape, dtype=bool)
    width = np.int64(max(heldout.shape[1], int(ranked.max()) + 1))
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(heldout.indptr))
    held = np.sort(rows * width + heldout.indices.astype(np.int64))  # (nnz,)
    keys = np.arange(n_rows, dtype=np.int64)[:, None] * width + ranked  # (B, K)
    pos = np.searchsorted(held, keys).clip(max=len(held) - 1)
    return held[pos] == keys


def recall_from_hits(hits: np.ndarray, n_heldout: np.ndarray, k: int) -> np.ndarray:
    """Per-user Recall@K from the (B, >= K) relevance of the ranking; NaN without held-out items."""
    denom = np.minimum(k, n_heldout).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_heldout > 0, hits[:, :k].sum(axis=1) / denom, np.nan)


def ndcg_from_hits(hits: np.ndarray, n_heldout: np.ndarray, k: int) -> np.ndarray:
    """Per-user NDCG@K from the (B, >= K) relevance of the ranking; NaN without held-out items."""
    hits = hits[:, :k]
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits.astype(np.float64) @ discount[: hits.shape[1]]
    ideal = np.concatenate([[0.0], np.cumsum(discount)])[np.minimum(k, n_heldout)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_heldout > 0, dcg / ideal, np.nan)


def recall_at_k(ranked: np.ndarray, heldout: Heldout, k: int) -> np.ndarray:
    """Per-user Recall@K = |top-K ∩ held-out| / min(K, |held-out|); NaN for users without held-out items."""
    hits, n = _hits(ranked, heldout, k)
    return recall_from_hits(hits, n, k)


def ndcg_at_k(ranked: np.ndarray, heldout: Heldout, k: int) -> np.ndarray:
    """Per-user NDCG@K, binary relevance, log2(rank+1) discount; NaN for users without held-out items."""
    hits, n = _hits(ranked, heldout, k)
    return ndcg_from_hits(hits, n, k)


class Evaluator:
    """Accumulates per-user metrics over batches of scored users, then averages them.

    ``users`` are the rows of ``heldout`` with at least one item: the only ones evaluated. Callers score
    them in any batches (``add``); rows for other users are ignored. ``result`` refuses to average until
    every evaluated user has been added, so a truncated loop cannot report a flattering partial mean.
    """

    def __init__(
        self,
        heldout: sp.csr_matrix,
        known: sp.csr_matrix,
        recall_ks: Iterable[int] = DEFAULT_RECALL_KS,
        ndcg_ks: Iterable[int] = DEFAULT_NDCG_KS,
    ) -> None:
        self.heldout = sp.csr_matrix(heldout)
        self.known = sp.csr_matrix(known)
        if self.heldout.shape != self.known.shape:
            raise CLLM4RecError(f"held-out shape {self.heldout.shape} != known shape {self.known.shape}")
        self.heldout.sum_duplicates()
        self.recall_ks = tuple(int(k) for k in recall_ks)
        self.ndcg_ks = tuple(int(k) for k in ndcg_ks)
        if not self.recall_ks and not self.ndcg_ks:
            raise CLLM4RecError("no metric cut-offs given")
        if min(self.recall_ks + self.ndcg_ks) < 1:
            raise CLLM4RecError("metric cut-offs must be positive")
        self.n_heldout = np.diff(self.heldout.indptr)
        self.users: np.ndarray = np.flatnonzero(self.n_heldout > 0)
        self.keys = [f"recall@{k}" for k in self.recall_ks] + [f"ndcg@{k}" for k in self.ndcg_ks]
        n_users = self.heldout.shape[0]
        self._values = {key: np.full(n_users, np.nan) for key in self.keys}
        self._done = np.zeros(n_users, dtype=bool)

    @property
    def n_items(self) -> int:
        return self.heldout.shape[1]

    def add(self, users: np.ndarray, scores: np.ndarray | torch.Tensor) -> None:
        """Rank ``scores`` (B, J) for ``users`` with their known items excluded and record their metrics."""
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        s = _as_numpy_scores(scores)
        if s.shape != (len(users), self.n_items):
            raise CLLM4RecError(f"scores have shape {s.shape}, expected ({len(users)}, {self.n_items})")
        keep = self._with_heldout(users)
        users, s = users[keep], s[keep]
        if not len(users):
            return
        self.add_ranked(users, topk_items(s, self.max_k, exclude=self.known[users]))

    def _with_heldout(self, users: np.ndarray) -> np.ndarray:
        """(B,) bool: which of ``users`` have held-out items (the only ones evaluated); checks the range."""
        if len(users) and (users.min() < 0 or users.max() >= self.heldout.shape[0]):
            raise CLLM4RecError("user index out of range")
        return self.n_heldout[users] > 0

    @property
    def max_k(self) -> int:
        """The longest ranking any metric reads."""
        return max(self.recall_ks + self.ndcg_ks)

    def add_ranked(self, users: np.ndarray, ranked: np.ndarray) -> None:
        """Record the metrics of ``users`` from their (B, >= min(max_k, J)) top items, best first, known items
        already excluded (a recommender that ranks in item chunks never builds the (B, J) scores)."""
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        ranked = np.asarray(ranked, dtype=np.int64)
        if ranked.ndim != 2 or ranked.shape[0] != len(users):
            raise CLLM4RecError(f"ranked has shape {ranked.shape}, expected ({len(users)}, k)")
        keep = self._with_heldout(users)
        users, ranked = users[keep], ranked[keep]
        if not len(users):
            return
        hits = membership(ranked, self.heldout[users])  # (B, K) computed once for every cut-off
        n_heldout = self.n_heldout[users]
        for k in self.recall_ks:
            self._values[f"recall@{k}"][users] = recall_from_hits(hits, n_heldout, k)
        for k in self.ndcg_ks:
            self._values[f"ndcg@{k}"][users] = ndcg_from_hits(hits, n_heldout, k)
        self._done[users] = True

    @property
    def n_missing(self) -> int:
        """Evaluated users not added yet."""
        return int((~self._done[self.users]).sum())

    def result(self) -> dict[str, float]:
        """Mean of each metric over the evaluated users, plus ``n_users``."""
        if not len(self.users):
            raise CLLM4RecError("no user has held-out items: nothing to evaluate")
        if self.n_missing:
            raise CLLM4RecError(f"{self.n_missing} of {len(self.users)} evaluated users were never scored")
        out: dict[str, float] = {key: float(self._values[key][self.users].mean()) for key in self.keys}
        out["n_users"] = len(self.users)
        return out

    def per_user(self) -> list[dict[str, Any]]:
        """One row per evaluated user that has been added: user index, |held-out| and each metric."""
        rows = []
        for u in self.users[self._done[self.users]]:
            row: dict[str, Any] = {"user": int(u), "n_heldout": int(self.n_heldout[u])}
            row.update({key: float(self._values[key][u]) for key in self.keys})
            rows.append(row)
        return rows


def selection_score(metrics: dict[str, float], keys: Sequence[str] = DEFAULT_SELECTION_KEYS) -> float:
    """The sum of ``keys`` (default Recall@20 + Recall@40 + NDCG@100, the paper's model-selection rule)."""
    missing = [key for key in keys if key not in metrics]
    if missing:
        raise CLLM4RecError(f"selection metric(s) {', '.join(missing)} not computed; have {sorted(metrics)}")
    return float(sum(metrics[key] for key in keys))
