"""What a checkpoint needs to serve without its dataset: ID maps, item titles and what each user has seen.

Saved as ``catalog/`` inside every checkpoint (docs/DESIGN.md §7)::

    users.json   external user IDs in index order (user_i is users[i])
    items.json   external item IDs in index order (item_j is items[j])
    titles.json  a display title per item (null where the dataset has none)
    known.npz    every interaction the dataset holds (train + valid + test), a binary user x item CSR matrix
    added.jsonl  items added from their text after training (``add-items``): {"id": ..., "fields": {...}}
                 per line, in index order after the dataset's items; absent when none was added
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data import Dataset
from cllm4rec.data.idmap import IDMaps

FILES = ("users.json", "items.json", "titles.json", "known.npz")


@dataclass
class Catalog(IDMaps):
    """External IDs, titles and the full interaction history of the users a model was trained on."""

    user_ids: list[str]
    item_ids: list[str]
    titles: list[str | None]
    known: sp.csr_matrix  # (I, J) binary: train + valid + test
    added: list[dict[str, str]] = field(default_factory=list)
    """Text fields of the items added after training, which are the last ``len(added)`` items."""

    @property
    def n_trained_items(self) -> int:
        """Items of the dataset the model was trained on (the added ones come after them)."""
        return self.n_items - len(self.added)

    def with_items(self, item_ids: list[str], texts: list[dict[str, str]]) -> Catalog:
        """This catalogue with new items appended (no interactions yet)."""
        titles = [fields.get("title") or fields.get("name") for fields in texts]
        known = sp.hstack([self.known, sp.csr_matrix((self.n_users, len(item_ids)), dtype=np.float32)]).tocsr()
        return Catalog(
            list(self.user_ids), [*self.item_ids, *item_ids], [*self.titles, *titles], known, [*self.added, *texts]
        )

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> Catalog:
        known = (dataset.train + dataset.valid + dataset.test).tocsr()
        known.data[:] = 1.0
        known.sort_indices()  # each user's items in index order: the prompt order of a known user
        titles = [dataset.item_title(j) for j in range(dataset.n_items)]
        return cls(list(dataset.user_ids), list(dataset.item_ids), titles, known)

    def save(self, folder: Path) -> None:
        """Write the four files into ``folder`` (a fresh folder inside a checkpoint being written)."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, value in (("users.json", self.user_ids), ("items.json", self.item_ids), ("titles.json", self.titles)):
            (folder / name).write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
        sp.save_npz(folder / "known.npz", self.known, compressed=True)
        if self.added:
            with open(folder / "added.jsonl", "w", encoding="utf-8") as fh:
                for ext, fields in zip(self.item_ids[self.n_trained_items :], self.added, strict=True):
                    fh.write(json.dumps({"id": ext, "fields": fields}, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, folder: Path) -> Catalog:
        """Read a saved catalogue; a missing or unreadable file is a clear error naming it."""
        try:
            users, items, titles = (
                json.loads((folder / name).read_text(encoding="utf-8"))
                for name in ("users.json", "items.json", "titles.json")
            )
            known = sp.load_npz(folder / "known.npz").tocsr().astype(np.float32)
            known.sort_indices()
            added = []
            if (folder / "added.jsonl").is_file():
                lines = (folder / "added.jsonl").read_text(encoding="utf-8").splitlines()
                added = [json.loads(line)["fields"] for line in lines if line.strip()]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CLLM4RecError(f"cannot read the ID catalogue in {folder}: {exc}") from exc
        if known.shape != (len(users), len(items)) or len(titles) != len(items) or len(added) > len(items):
            raise CLLM4RecError(f"the ID catalogue in {folder} is inconsistent (sizes do not match)")
        return cls(users, items, titles, known, added)
