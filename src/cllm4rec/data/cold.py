"""Cold-start items: a seeded share of the catalogue whose interactions all leave training (docs/DESIGN.md §11).

``data prepare --cold-items F`` draws ``round(F * J)`` items with ``numpy.random.default_rng(seed)`` (a
permutation of the item indices, taken after preprocessing); the first half (rounded down) is cold-validation,
the rest cold-test, the ColdRec benchmark's protocol. Their interactions leave the warm data entirely: the
warm catalogue (what training sees) is the other items, re-indexed in their original order, and split per
user as without cold items. Reviews of cold items are dropped (a new item has none); their texts stay, since
text is all a new item has.

Stored in a dataset folder as::

    cold_items.json       {"valid": [external IDs], "test": [external IDs]}
    cold_item_text.jsonl  {"item": k, "fields": {...}}, k indexing the cold items (valid first, then test)
    cold.npz              binary user x cold-item CSR matrix of their interactions
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from cllm4rec.core.errors import CLLM4RecError

COLD_SPLITS = ("valid", "test")
FILES = ("cold_items.json", "cold_item_text.jsonl", "cold.npz")


@dataclass
class ColdItems:
    """Items kept out of training, with their texts and the interactions they will be evaluated on."""

    item_ids: list[str]
    """External IDs: the ``n_valid`` cold-validation items, then the cold-test items."""
    item_text: list[dict[str, str]]
    n_valid: int
    interactions: sp.csr_matrix
    """(I, len(item_ids)) binary: who interacted with each cold item."""

    def __post_init__(self) -> None:
        mat = sp.csr_matrix(self.interactions, dtype=np.float32)
        if mat.shape[1] != len(self.item_ids) or len(self.item_text) != len(self.item_ids):
            raise CLLM4RecError("the cold items' IDs, texts and interactions do not match in number")
        if not 0 <= self.n_valid <= len(self.item_ids):
            raise CLLM4RecError(f"cold-validation count {self.n_valid} is outside 0..{len(self.item_ids)}")
        mat.sum_duplicates()
        mat.data[:] = 1.0
        self.interactions = mat

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def columns(self, split: str) -> np.ndarray:
        """Indices (into the cold items) of the cold-validation or cold-test items."""
        if split == "valid":
            return np.arange(self.n_valid)
        if split == "test":
            return np.arange(self.n_valid, self.n_items)
        raise CLLM4RecError(f"cold items are split into valid and test, not {split!r}")

    def subset(self, split: str) -> ColdItems:
        """Only the cold items of ``split`` (as if they were all the cold items, ``n_valid`` 0 or all)."""
        cols = self.columns(split)
        return ColdItems(
            [self.item_ids[k] for k in cols],
            [self.item_text[k] for k in cols],
            len(cols) if split == "valid" else 0,
            self.interactions[:, cols].tocsr(),
        )

    def save(self, folder: Path) -> None:
        ids = {"valid": self.item_ids[: self.n_valid], "test": self.item_ids[self.n_valid :]}
        (folder / "cold_items.json").write_text(json.dumps(ids), encoding="utf-8")
        with open(folder / "cold_item_text.jsonl", "w", encoding="utf-8") as fh:
            for k, fields in enumerate(self.item_text):
                if fields:
                    fh.write(json.dumps({"item": k, "fields": fields}, ensure_ascii=False) + "\n")
        sp.save_npz(folder / "cold.npz", self.interactions, compressed=True)

    @classmethod
    def load(cls, folder: Path) -> ColdItems | None:
        """The cold items of a dataset folder, or None when it was prepared without any."""
        if not (folder / "cold_items.json").is_file():
            return None
        try:
            ids = json.loads((folder / "cold_items.json").read_text(encoding="utf-8"))
            valid, test = list(ids["valid"]), list(ids["test"])
            mat = sp.load_npz(folder / "cold.npz").tocsr()
            text: list[dict[str, str]] = [{} for _ in range(len(valid) + len(test))]
            with open(folder / "cold_item_text.jsonl", encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        row = json.loads(line)
                        text[row["item"]] = row["fields"]
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise CLLM4RecError(f"cannot read the cold items of {folder}: {exc}") from exc
        return cls(valid + test, text, len(valid), mat)


def draw_cold_items(n_items: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(cold-validation, cold-test) item indices for ``fraction`` of ``n_items``, each sorted."""
    if not 0 <= fraction < 1:
        raise CLLM4RecError(f"--cold-items must be a fraction in [0, 1), got {fraction}")
    n_cold = int(round(fraction * n_items))
    if fraction > 0 and n_cold < 2:
        raise CLLM4RecError(
            f"--cold-items {fraction} of {n_items} items leaves fewer than 2 cold items (one per cold split)"
        )
    perm = np.random.default_rng(seed).permutation(n_items)[:n_cold]
    n_valid = n_cold // 2
    return np.sort(perm[:n_valid]), np.sort(perm[n_valid:])
