"""``recommend()``: the one function the CLI (and any server) calls to get top-k items for someone.

A trained run folder is loaded once (``load_run``); ``recommend`` then serves a known user (their prompt
starts with their ``user_i`` token, and everything the dataset knows about them is excluded) or a raw item
history from someone not in the training data (the prompt is the same template with the user token replaced
by words: ``A user has interacted with item_a item_b, the user will interact with``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cllm4rec.data import Dataset
from cllm4rec.errors import CLLM4RecError
from cllm4rec.serving.scoring import build_prompts, score_prompts
from cllm4rec.training.corpora import user_items


@dataclass(frozen=True)
class Recommendation:
    """One recommended item."""

    rank: int
    item: str
    score: float
    title: str | None

    def to_dict(self) -> dict[str, object]:
        return {"rank": self.rank, "item": self.item, "score": self.score, "title": self.title}


@dataclass
class LoadedRun:
    """A trained model ready to serve: model, tokenizer, dataset and how prompts are formed."""

    model: torch.nn.Module
    tok: object
    dataset: Dataset
    style: str
    max_length: int
    device: str
    checkpoint: Path


def load_run(run_dir: str | Path, *, device: str = "cpu", data: str | Path | None = None) -> LoadedRun:
    """Load the final checkpoint of a run folder (finetuned if present, else pretrained)."""
    from cllm4rec.model import CLLM4Rec
    from cllm4rec.training.engine import resolve_device
    from cllm4rec.training.run_folder import RunFolder
    from cllm4rec.training.runner import final_checkpoint

    run = RunFolder(Path(run_dir))
    info = run.info()
    config = run.config()
    dataset = Dataset.load(data or info["dataset"])
    run.check_dataset(dataset)
    path, style = final_checkpoint(run)
    device = resolve_device(device)
    model = CLLM4Rec.load(path / "model", device=device)
    model.autocast = config.model.bf16
    model.eval()
    return LoadedRun(model, model.id_tokenizer(), dataset, style, config.model.max_length, device, path)


def _check_k(k: int, n_items: int) -> None:
    if k <= 0:
        raise CLLM4RecError(f"k must be a positive number of items, got {k}")
    if k > n_items:
        raise CLLM4RecError(f"k={k} is larger than the number of items ({n_items})")


def user_history(dataset: Dataset, user: int) -> np.ndarray:
    """Everything the dataset knows a user interacted with (train, validation and test)."""
    return np.unique(np.concatenate([user_items(dataset.split(s), user) for s in ("train", "valid", "test")]))


def resolve_user(dataset: Dataset, user: str) -> int:
    if user not in dataset.user_index:
        raise CLLM4RecError(f"unknown user {user!r}: not in the dataset (use --history to serve a new user)")
    return dataset.user_index[user]


def resolve_items(dataset: Dataset, items: Sequence[str]) -> np.ndarray:
    if not items:
        raise CLLM4RecError("the history is empty: give at least one item ID")
    unknown = [i for i in items if i not in dataset.item_index]
    if unknown:
        raise CLLM4RecError(f"unknown item ID(s) in the history: {', '.join(map(str, unknown[:5]))}")
    return np.unique(np.asarray([dataset.item_index[i] for i in items], dtype=np.int64))


def recommend(
    loaded: LoadedRun,
    *,
    user: str | None = None,
    history: Sequence[str] | None = None,
    k: int = 10,
) -> list[Recommendation]:
    """Top-k items for a known ``user`` (external ID) or a raw ``history`` of external item IDs."""
    return recommend_many(
        loaded, users=None if user is None else [user], histories=None if history is None else [history], k=k
    )[0]


def recommend_many(
    loaded: LoadedRun,
    *,
    users: Sequence[str] | None = None,
    histories: Sequence[Sequence[str]] | None = None,
    k: int = 10,
    batch_size: int = 32,
    progress: bool = False,
    chunk_users: int = 4096,
) -> list[list[Recommendation]]:
    """Batched ``recommend``: either known users or raw histories (exactly one of the two)."""
    ds = loaded.dataset
    _check_k(k, ds.n_items)
    if (users is None) == (histories is None):
        raise CLLM4RecError("give either users or histories, not both and not neither")
    if users is not None:
        idx = [resolve_user(ds, u) for u in users]
        hist = [user_history(ds, i) for i in idx]
        tokens: list[int | None] = list(idx)
    else:
        hist = [resolve_items(ds, h) for h in histories]
        tokens = [None] * len(hist)
    for n, seen in enumerate(hist):
        if k > ds.n_items - len(seen):
            who = users[n] if users is not None else f"history {n + 1}"
            raise CLLM4RecError(f"k={k} is more than the {ds.n_items - len(seen)} items {who} has not seen")
    results = []
    for start in range(0, len(hist), chunk_users):  # bounded memory: chunk x items scores at a time
        part = slice(start, start + chunk_users)
        prompts = build_prompts(loaded.tok, tokens[part], hist[part], loaded.max_length, loaded.style)
        scores = score_prompts(
            loaded.model, loaded.tok, prompts, batch_size=batch_size, device=loaded.device, progress=progress
        )
        for row, seen in zip(scores.clone(), hist[part], strict=True):  # clone: scores are inference tensors
            row[torch.as_tensor(seen, dtype=torch.long)] = -torch.inf
            top = torch.topk(row, k)
            results.append(
                [
                    Recommendation(r + 1, ds.item_ids[j], float(s), ds.item_title(j))
                    for r, (s, j) in enumerate(zip(top.values.tolist(), top.indices.tolist(), strict=True))
                ]
            )
    return results
