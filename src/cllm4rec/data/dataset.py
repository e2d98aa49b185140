"""The prepared dataset: split interaction matrices, ID maps and texts, stored as one folder.

Folder layout (written by ``cllm4rec data prepare``, read by everything else)::

    meta.json             counts, options, seed, source, content_hash
    train.npz valid.npz test.npz   binary user x item CSR matrices (scipy.sparse.save_npz)
    users.json items.json          external ID -> index (JSON object, insertion order = index order)
    item_text.jsonl       {"item": j, "fields": {"title": "...", ...}} for items with text
    user_text.jsonl       {"user": i, "fields": {"profile": "...", ...}} for users with text
    reviews.jsonl         {"user": i, "item": j, "text": "..."} one per (user, item) pair with text
    cold_*                cold-start items, when prepared with --cold-items (see cold.py)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.core.files import atomic_dir
from cllm4rec.data.cold import ColdItems
from cllm4rec.data.idmap import IDMaps
from cllm4rec.data.matrix import row_items

SPLITS = ("train", "valid", "test")
SPLIT_ALIASES = {"val": "valid", "validation": "valid"}
EVAL_SPLITS = ("valid", "test")


def split_name(split: str) -> str:
    """The canonical name of a split (``val`` and ``validation`` mean ``valid``)."""
    return SPLIT_ALIASES.get(split, split)


def evaluation_split(split: str, what: str) -> str:
    """``valid`` or ``test`` (aliases accepted); any other split is an error saying ``what`` needs one."""
    name = split_name(split)
    if name not in EVAL_SPLITS:
        raise CLLM4RecError(f"{what} needs split 'valid' or 'test', got {split!r}")
    return name


FORMAT_VERSION = 1


class Review(NamedTuple):
    """Text written by a user about an item (indices, not external IDs)."""

    user: int
    item: int
    text: str


@dataclass
class Dataset(IDMaps):
    """A split, re-indexed dataset with its texts; users are rows, items are columns."""

    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    user_ids: list[str]
    item_ids: list[str]
    item_text: list[dict[str, str]] = field(default_factory=list)
    user_text: list[dict[str, str]] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    cold: ColdItems | None = None
    """Items held out of training entirely (``--cold-items``), with their texts and interactions."""

    def __post_init__(self) -> None:
        shape = (len(self.user_ids), len(self.item_ids))
        for name in SPLITS:
            mat = sp.csr_matrix(getattr(self, name), dtype=np.float32)
            if mat.shape != shape:
                raise CLLM4RecError(f"{name} matrix has shape {mat.shape}, expected {shape}")
            mat.sum_duplicates()
            mat.data[:] = 1.0
            mat.eliminate_zeros()
            setattr(self, name, mat)
        if not self.item_text:
            self.item_text = [{} for _ in self.item_ids]
        if not self.user_text:
            self.user_text = [{} for _ in self.user_ids]
        if len(self.item_text) != len(self.item_ids) or len(self.user_text) != len(self.user_ids):
            raise CLLM4RecError("text tables do not match the number of users/items")
        if self.cold is not None and self.cold.interactions.shape[0] != shape[0]:
            raise CLLM4RecError("the cold items' interactions do not match the number of users")

    def split(self, name: str) -> sp.csr_matrix:
        """The matrix of one split: ``train``, ``valid`` (alias ``val``/``validation``) or ``test``."""
        name = split_name(name)
        if name not in SPLITS:
            raise CLLM4RecError(f"unknown split {name!r}; expected one of train, valid, test")
        return getattr(self, name)

    def known(self, split: str) -> sp.csr_matrix:
        """What a user is known to have seen when evaluating ``split``: train, plus valid for test."""
        name = split_name(split)
        if name == "valid":
            return self.train
        if name == "test":
            return (self.train + self.valid).tocsr()
        if name == "train":
            return sp.csr_matrix(self.train.shape, dtype=np.float32)
        raise CLLM4RecError(f"unknown split {split!r}; expected one of train, valid, test")

    def items_of(self, user: int, split: str = "train") -> np.ndarray:
        """Item indices of ``user`` in ``split`` (sorted)."""
        return row_items(self.split(split), user).copy()

    def item_title(self, item: int) -> str | None:
        """A human-readable name for an item: its ``title`` (or ``name``) field when the dataset has one."""
        fields = self.item_text[item]
        return fields.get("title") or fields.get("name")

    # ------------------------------------------------------------------ I/O
    def content_hash(self) -> str:
        """A sha256 over the splits, ID maps and texts: two folders with the same hash hold the same data."""
        h = hashlib.sha256()
        for name in SPLITS:
            mat = self.split(name)
            h.update(name.encode())
            h.update(np.asarray(mat.indptr, dtype=np.int64).tobytes())
            h.update(np.asarray(mat.indices, dtype=np.int64).tobytes())
        for ids in (self.user_ids, self.item_ids):
            h.update(json.dumps(ids).encode())
        h.update(json.dumps(self.item_text, sort_keys=True).encode())
        h.update(json.dumps(self.user_text, sort_keys=True).encode())
        h.update(json.dumps([list(r) for r in self.reviews]).encode())
        if self.cold is not None:  # a dataset without cold items keeps the hash it always had
            mat = self.cold.interactions
            h.update(json.dumps([self.cold.item_ids, self.cold.item_text, self.cold.n_valid]).encode())
            h.update(np.asarray(mat.indptr, dtype=np.int64).tobytes())
            h.update(np.asarray(mat.indices, dtype=np.int64).tobytes())
        return h.hexdigest()

    def save(self, path: str | os.PathLike[str], force: bool = False) -> Path:
        """Write the folder atomically (temporary folder, then rename); refuse an existing one unless
        forced."""
        path = Path(path)
        meta = dict(self.meta)
        meta.update(
            format_version=FORMAT_VERSION,
            n_users=self.n_users,
            n_items=self.n_items,
            n_interactions={s: int(self.split(s).nnz) for s in SPLITS},
            content_hash=self.content_hash(),
        )
        with atomic_dir(path, force=force) as tmp:
            for name in SPLITS:
                sp.save_npz(tmp / f"{name}.npz", self.split(name), compressed=True)
            for fname, ids in (("users.json", self.user_ids), ("items.json", self.item_ids)):
                (tmp / fname).write_text(json.dumps({e: i for i, e in enumerate(ids)}), encoding="utf-8")
            _write_jsonl(tmp / "item_text.jsonl", ({"item": j, "fields": f} for j, f in enumerate(self.item_text) if f))
            _write_jsonl(tmp / "user_text.jsonl", ({"user": i, "fields": f} for i, f in enumerate(self.user_text) if f))
            _write_jsonl(
                tmp / "reviews.jsonl",
                ({"user": r.user, "item": r.item, "text": r.text} for r in self.reviews),
            )
            if self.cold is not None:
                self.cold.save(tmp)
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        self.meta = meta
        self.path = path
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Dataset:
        """Read a prepared dataset folder; a missing or broken folder is a clear error."""
        path = Path(path)
        if not path.is_dir():
            raise CLLM4RecError(f"dataset folder {path} does not exist (create it with 'cllm4rec data prepare')")
        meta_file = path / "meta.json"
        if not meta_file.is_file():
            raise CLLM4RecError(f"{path} is not a prepared dataset folder (no meta.json)")
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            users = json.loads((path / "users.json").read_text(encoding="utf-8"))
            items = json.loads((path / "items.json").read_text(encoding="utf-8"))
            mats = {s: sp.load_npz(path / f"{s}.npz").tocsr() for s in SPLITS}
        except (OSError, ValueError) as exc:
            raise CLLM4RecError(f"cannot read dataset folder {path}: {exc}") from exc
        user_ids = _ordered_ids(users, "users.json")
        item_ids = _ordered_ids(items, "items.json")
        item_text: list[dict[str, str]] = [{} for _ in item_ids]
        for row in _read_jsonl(path / "item_text.jsonl"):
            item_text[row["item"]] = row["fields"]
        user_text: list[dict[str, str]] = [{} for _ in user_ids]
        for row in _read_jsonl(path / "user_text.jsonl"):
            user_text[row["user"]] = row["fields"]
        reviews = [Review(r["user"], r["item"], r["text"]) for r in _read_jsonl(path / "reviews.jsonl")]
        return cls(
            train=mats["train"],
            valid=mats["valid"],
            test=mats["test"],
            user_ids=user_ids,
            item_ids=item_ids,
            item_text=item_text,
            user_text=user_text,
            reviews=reviews,
            meta=meta,
            path=path,
            cold=ColdItems.load(path),
        )


def _ordered_ids(mapping: dict[str, int], name: str) -> list[str]:
    ids = [""] * len(mapping)
    for ext, idx in mapping.items():
        if not 0 <= idx < len(ids) or ids[idx]:
            raise CLLM4RecError(f"{name} is not a valid index map (index {idx} for {ext!r})")
        ids[idx] = ext
    return ids


def _write_jsonl(path: Path, rows: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as exc:
                    raise CLLM4RecError(f"{path}:{lineno}: broken JSON line ({exc})") from exc
    return rows
