"""Fixtures for the training tests: a small synthetic dataset with text, saved as a prepared folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from cllm4rec.data import Dataset, Review

GENRES = ["comedy", "drama", "action", "horror", "romance"]


def make_dataset(n_users: int = 24, n_items: int = 30, seed: int = 0, text: bool = True) -> Dataset:
    """Users like items of their two favourite genres: learnable co-occurrence structure."""
    rng = np.random.default_rng(seed)
    item_genre = rng.integers(0, len(GENRES), n_items)
    rows = {"train": [], "valid": [], "test": []}
    reviews = []
    for u in range(n_users):
        fav = rng.choice(len(GENRES), 2, replace=False)
        pool = np.flatnonzero(np.isin(item_genre, fav))
        items = rng.choice(pool, size=min(len(pool), 8), replace=False)
        for pos, j in enumerate(items):
            split = "test" if pos == 0 else "valid" if pos == 1 else "train"
            rows[split].append((u, int(j)))
            if text and split == "train" and pos % 2 == 0:
                reviews.append(Review(u, int(j), f"a fine {GENRES[item_genre[j]]} film, I liked it"))
    mats = {}
    for name, pairs in rows.items():
        r, c = zip(*pairs, strict=True)
        mats[name] = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(n_users, n_items))
    item_text = [{"title": f"Movie {j}", "genres": GENRES[g]} for j, g in enumerate(item_genre)] if text else []
    user_text = [{"profile": f"a viewer number {u}"} for u in range(n_users)] if text else []
    return Dataset(
        train=mats["train"],
        valid=mats["valid"],
        test=mats["test"],
        user_ids=[f"u{u}" for u in range(n_users)],
        item_ids=[f"i{j}" for j in range(n_items)],
        item_text=item_text,
        user_text=user_text,
        reviews=reviews if text else [],
    )


@pytest.fixture()
def tiny_data_dir(tmp_path: Path) -> Path:
    """A saved synthetic dataset folder."""
    path = tmp_path / "data"
    make_dataset().save(path)
    return path
