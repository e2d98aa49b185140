"""ML-100K as a prepared Dataset for the baseline tests.

A stand-in for ``cllm4rec data prepare`` that follows METHOD.md §6: keep rating > 3, re-index users and
items by ascending external ID, and split each user's items at random (numpy default_rng(98765), users in
index order): n_valid = n_test = max(1, round(0.1 n)) for users with n >= 3, the rest train.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from cllm4rec.data import Dataset

SEED = 98765


def ml100k_dataset(folder: Path, seed: int = SEED) -> Dataset:
    """Read ``u.data`` and build the seeded per-user split described above."""
    raw = np.loadtxt(folder / "u.data", dtype=np.int64)
    raw = raw[raw[:, 2] > 3]
    user_ids, users = np.unique(raw[:, 0], return_inverse=True)
    item_ids, items = np.unique(raw[:, 1], return_inverse=True)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[tuple[int, int]]] = {"train": [], "valid": [], "test": []}
    order = np.lexsort((items, users))
    users, items = users[order], items[order]
    bounds = np.flatnonzero(np.diff(np.concatenate([[-1], users, [len(user_ids)]])))
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        u, its = int(users[start]), items[start:stop]
        n = len(its)
        n_hold = max(1, round(0.1 * n)) if n >= 3 else 0
        perm = its[rng.permutation(n)] if n_hold else its
        parts["valid"] += [(u, int(j)) for j in perm[:n_hold]]
        parts["test"] += [(u, int(j)) for j in perm[n_hold : 2 * n_hold]]
        parts["train"] += [(u, int(j)) for j in perm[2 * n_hold :]]
    shape = (len(user_ids), len(item_ids))

    def csr(pairs: list[tuple[int, int]]) -> sp.csr_matrix:
        arr = np.array(pairs, dtype=np.int64).reshape(-1, 2)
        return sp.csr_matrix((np.ones(len(arr), dtype=np.float32), (arr[:, 0], arr[:, 1])), shape=shape)

    return Dataset(
        csr(parts["train"]),
        csr(parts["valid"]),
        csr(parts["test"]),
        user_ids=[str(u) for u in user_ids],
        item_ids=[str(j) for j in item_ids],
        meta={"source": "ml-100k", "seed": seed, "min_rating": 4},
    )


@pytest.fixture(scope="session")
def ml100k(ml100k_dir: Path) -> Dataset:
    """The seeded ML-100K split (skips when the shared data is absent)."""
    return ml100k_dataset(ml100k_dir)


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
