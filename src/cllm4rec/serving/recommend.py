"""``load_run`` and ``recommend()``: the one entry point the CLI (and any server) calls for top-k items.

A run folder is loaded once (:func:`load_run`) from its final checkpoint alone: weights, backbone reference,
config and the ID catalogue all live in the checkpoint, so a run copied elsewhere serves without its dataset.
:func:`recommend` answers a batch of queries, each a known user (their prompt starts with their ``user_i``
token, and everything the dataset knew about them is excluded) or a raw item history from someone not in the
training data (the template with the user token replaced by words, docs/DESIGN.md §5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data import Dataset
from cllm4rec.data.matrix import row_items
from cllm4rec.evaluation import batch_users
from cllm4rec.model import CLLM4Rec, resolve_device
from cllm4rec.model.recommender import CLLM4RecRecommender
from cllm4rec.runs.catalog import Catalog
from cllm4rec.runs.checkpoint import RunRecord, dataset_hash, read_record, verify_checkpoint
from cllm4rec.runs.folder import RunFolder


@dataclass(frozen=True)
class Recommendation:
    """One recommended item."""

    rank: int
    item: str
    score: float
    title: str | None

    def to_dict(self) -> dict[str, object]:
        return {"rank": self.rank, "item": self.item, "score": self.score, "title": self.title}


@dataclass(frozen=True)
class Query:
    """Who to recommend for: a known ``user`` (external ID) or a raw ``history`` of external item IDs."""

    user: str | None = None
    history: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if (self.user is None) == (self.history is None):
            raise CLLM4RecError("a query names either a user or a history, not both and not neither")

    def describe(self) -> str:
        return f"user {self.user}" if self.user is not None else f"history of {len(self.history or ())} items"


@dataclass
class LoadedRun:
    """A trained run ready to serve: the recommender, its ID catalogue and where it came from."""

    root: Path
    checkpoint: Path
    style: str
    record: RunRecord
    recommender: CLLM4RecRecommender
    device: str
    _datasets: dict[str, Dataset] = field(default_factory=dict, repr=False)

    @property
    def catalog(self) -> Catalog:
        return self.record.catalog

    def dataset(self, data: str | Path | None = None) -> Dataset:
        """The dataset to evaluate on: ``data``, else one loaded before, else the folder recorded at training
        time; only a dataset with the content the run was trained on is accepted."""
        recorded = self.record.dataset
        if data is None and self._datasets:
            return next(iter(self._datasets.values()))
        if data is None:
            if recorded.path is None or not Path(recorded.path).is_dir():
                raise CLLM4RecError(
                    f"the dataset this run was trained on is not at {recorded.path}; give its folder with --data DIR"
                )
            data = recorded.path
        key = str(Path(data).resolve())
        if key not in self._datasets:
            dataset = Dataset.load(data)
            actual = dataset_hash(dataset)
            if actual != recorded.content_hash:
                raise CLLM4RecError(
                    f"dataset {data} differs from the one this run was trained on "
                    f"(content hash {actual[:12]}, expected {recorded.content_hash[:12]})"
                )
            self._datasets[key] = dataset
        return self._datasets[key]


def load_run(
    run_dir: str | Path, *, device: str = "auto", data: str | Path | None = None, progress: bool = False
) -> LoadedRun:
    """Load the final checkpoint of a run folder (finetuned if present, else pretrained), checked file by file.

    Serving needs nothing else. ``data`` (a dataset folder) is loaded and checked at once for evaluation;
    without it :meth:`LoadedRun.dataset` loads the recorded folder on first use.
    """
    run = RunFolder(Path(run_dir))
    if not run.root.is_dir():
        raise CLLM4RecError(f"run folder {run.root} does not exist")
    path, style = run.final()
    verify_checkpoint(path)
    record = read_record(path)
    device = resolve_device(device)
    model = CLLM4Rec.load(path / "model", device=device, config=record.config.model)
    model.eval()
    if (model.n_users, model.n_items) != (record.catalog.n_users, record.catalog.n_items):
        raise CLLM4RecError(f"checkpoint {path}: the model and its ID catalogue disagree on the number of users/items")
    recommender = CLLM4RecRecommender(
        model,
        model.id_tokenizer(),
        style=style,
        max_length=record.config.model.max_length,
        progress=progress,
        dataset_hash=record.dataset.content_hash,
        trained_items=record.catalog.n_trained_items,
    )
    loaded = LoadedRun(run.root, path, style, record, recommender, device)
    if data is not None:
        loaded.dataset(data)
    return loaded


def _resolve(catalog: Catalog, query: Query) -> tuple[int, np.ndarray]:
    """(user row or -1, sorted item history) of one query; unknown IDs and empty histories are errors."""
    if query.user is not None:
        if query.user not in catalog.user_index:
            raise CLLM4RecError(f"unknown user {query.user!r}: not in the dataset (use --history to serve a new user)")
        user = catalog.user_index[query.user]
        return user, row_items(catalog.known, user)
    items = list(query.history or ())
    if not items:
        raise CLLM4RecError("the history is empty: give at least one item ID")
    unknown = [i for i in items if i not in catalog.item_index]
    if unknown:
        raise CLLM4RecError(f"unknown item ID(s) in the history: {', '.join(map(str, unknown[:5]))}")
    return -1, np.unique(np.asarray([catalog.item_index[i] for i in items], dtype=np.int64))


def recommend(loaded: LoadedRun, queries: Sequence[Query], *, k: int = 10) -> list[list[Recommendation]]:
    """The top-``k`` unseen items for each query, best first; every query is checked before any scoring."""
    catalog = loaded.catalog
    if k <= 0:
        raise CLLM4RecError(f"k must be a positive number of items, got {k}")
    if k > catalog.n_items:
        raise CLLM4RecError(f"k={k} is larger than the number of items ({catalog.n_items})")
    resolved = [_resolve(catalog, q) for q in queries]
    for query, (_, seen) in zip(queries, resolved, strict=True):
        if k > catalog.n_items - len(seen):
            raise CLLM4RecError(
                f"k={k} is more than the {catalog.n_items - len(seen)} items {query.describe()} has not seen"
            )
    results: list[list[Recommendation]] = []
    step = batch_users(catalog.n_items)
    for start in range(0, len(resolved), step):  # bounded memory: step x items scores at a time
        part = resolved[start : start + step]
        users = np.asarray([u for u, _ in part], dtype=np.int64)
        history = _history_matrix([seen for _, seen in part], catalog.n_items)
        # ranked in item chunks: no (batch, J) score matrix, so a million-item catalogue fits (DESIGN §2)
        top, top_scores = loaded.recommender.topk(users, history, k)
        for items, values in zip(top.tolist(), top_scores.tolist(), strict=True):
            results.append(
                [
                    Recommendation(r + 1, catalog.item_ids[j], float(v), catalog.titles[j])
                    for r, (j, v) in enumerate(zip(items, values, strict=True))
                ]
            )
    return results


def _history_matrix(histories: list[np.ndarray], n_items: int) -> sp.csr_matrix:
    indptr = np.concatenate([[0], np.cumsum([len(h) for h in histories])])
    indices = np.concatenate(histories) if histories else np.zeros(0, dtype=np.int64)
    data = np.ones(len(indices), dtype=np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(len(histories), n_items))
