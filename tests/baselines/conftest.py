"""Datasets for the baseline tests: real ML-100K through ``cllm4rec.data``, and a small synthetic one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from cllm4rec.data import Dataset, prepare_dataset


@pytest.fixture(scope="session")
def ml100k(ml100k_dir: Path) -> Dataset:
    """ML-100K prepared with the defaults (rating > 3, seed-98765 per-user 80/10/10 split), or a skip."""
    return prepare_dataset("movielens", ml100k_dir)


def synthetic_dataset(n_users: int = 60, n_items: int = 40, seed: int = 0) -> Dataset:
    """Two taste clusters (users prefer the first or second half of the items), split like ML-100K."""
    rng = np.random.default_rng(seed)
    half = n_items // 2
    parts: dict[str, list[tuple[int, int]]] = {"train": [], "valid": [], "test": []}
    for u in range(n_users):
        pool = np.arange(half) if u % 2 == 0 else np.arange(half, n_items)
        items = rng.choice(pool, size=int(rng.integers(6, 12)), replace=False)
        parts["valid"].append((u, int(items[0])))
        parts["test"].append((u, int(items[1])))
        parts["train"] += [(u, int(j)) for j in items[2:]]
    shape = (n_users, n_items)

    def csr(pairs: list[tuple[int, int]]) -> sp.csr_matrix:
        arr = np.array(pairs, dtype=np.int64)
        return sp.csr_matrix((np.ones(len(arr), dtype=np.float32), (arr[:, 0], arr[:, 1])), shape=shape)

    return Dataset(
        csr(parts["train"]),
        csr(parts["valid"]),
        csr(parts["test"]),
        user_ids=[f"u{i}" for i in range(n_users)],
        item_ids=[f"i{j}" for j in range(n_items)],
    )


@pytest.fixture()
def tiny() -> Dataset:
    """A small synthetic dataset with structure a personalised model can find."""
    return synthetic_dataset()
