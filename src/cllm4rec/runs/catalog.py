"""What a checkpoint needs to serve without its dataset: ID maps, item titles and what each user has seen.

Saved as ``catalog/`` inside every checkpoint (docs/DESIGN.md §7)::

    users.json   external user IDs in index order (user_i is users[i])
    items.json   external item IDs in index order (item_j is items[j])
    titles.json  a display title per item (null where the dataset has none)
    known.npz    every interaction the dataset holds (train + valid + test), a binary user x item CSR matrix
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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
        except (OSError, ValueError) as exc:
            raise CLLM4RecError(f"cannot read the ID catalogue in {folder}: {exc}") from exc
        if known.shape != (len(users), len(items)) or len(titles) != len(items):
            raise CLLM4RecError(f"the ID catalogue in {folder} is inconsistent (sizes do not match)")
        return cls(users, items, titles, known)
