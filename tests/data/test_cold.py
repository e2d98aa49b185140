"""Cold-start items: the seeded, disjoint split of data prepare --cold-items, and its folder round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data import Dataset, PrepareOptions, RawDataset, build_dataset
from cllm4rec.data.stats import dataset_stats


def _raw(n_users: int = 30, n_items: int = 40, seed: int = 0) -> RawDataset:
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        for j in rng.choice(n_items, size=8, replace=False):
            users.append(f"u{u}")
            items.append(f"i{j}")
    text = {f"i{j}": {"title": f"Thing {j}", "category": "toys" if j % 2 else "games"} for j in range(n_items)}
    reviews = [f"review of {i}" for i in items]
    return RawDataset(users=users, items=items, item_text=text, reviews=reviews)


def _pairs(ds: Dataset) -> set[tuple[str, str]]:
    out = set()
    for name in ("train", "valid", "test"):
        mat = ds.split(name).tocoo()
        out |= {(ds.user_ids[u], ds.item_ids[j]) for u, j in zip(mat.row, mat.col, strict=True)}
    return out


def test_cold_items_are_seeded_disjoint_and_keep_every_interaction() -> None:
    raw = _raw()
    ds = build_dataset(raw, PrepareOptions(cold_items=0.2, seed=3))
    cold = ds.cold
    assert cold is not None and cold.n_items == 8 and cold.n_valid == 4
    assert set(cold.item_ids).isdisjoint(ds.item_ids)
    assert len(set(cold.item_ids)) == 8 and len(ds.item_ids) + 8 == len(set(raw.items))
    warm = _pairs(ds)
    coo = cold.interactions.tocoo()
    moved = {(ds.user_ids[u], cold.item_ids[k]) for u, k in zip(coo.row, coo.col, strict=True)}
    assert warm.isdisjoint(moved)
    assert warm | moved == set(zip(raw.users, raw.items, strict=True))  # nothing lost, nothing invented
    assert all(cold.item_text[k]["title"] == f"Thing {cold.item_ids[k][1:]}" for k in range(8))
    assert all(ds.item_ids[r.item] not in cold.item_ids for r in ds.reviews)  # a new item has no reviews
    again = build_dataset(raw, PrepareOptions(cold_items=0.2, seed=3))
    assert again.cold is not None and again.cold.item_ids == cold.item_ids
    other = build_dataset(raw, PrepareOptions(cold_items=0.2, seed=4))
    assert other.cold is not None and other.cold.item_ids != cold.item_ids


def test_cold_items_round_trip_through_the_folder(tmp_path: Path) -> None:
    ds = build_dataset(_raw(), PrepareOptions(cold_items=0.25))
    plain = build_dataset(_raw(), PrepareOptions())
    assert ds.content_hash() != plain.content_hash()
    ds.save(tmp_path / "d")
    back = Dataset.load(tmp_path / "d")
    assert back.cold is not None and ds.cold is not None
    assert back.cold.item_ids == ds.cold.item_ids and back.cold.item_text == ds.cold.item_text
    assert (back.cold.interactions != ds.cold.interactions).nnz == 0
    assert back.content_hash() == ds.content_hash() == back.meta["content_hash"]
    stats = dataset_stats(back)["cold_items"]
    assert stats["valid"]["items"] == 5 and stats["test"]["items"] == 5
    assert stats["valid"]["interactions"] + stats["test"]["interactions"] == ds.cold.interactions.nnz
    assert Dataset.load(_save(plain, tmp_path / "p")).cold is None


def _save(ds: Dataset, path: Path) -> Path:
    ds.save(path)
    return path


@pytest.mark.parametrize("fraction", [-0.1, 1.0, True])
def test_nonsense_cold_fractions_are_refused(fraction: float) -> None:
    with pytest.raises(CLLM4RecError, match="--cold-items"):
        PrepareOptions(cold_items=fraction)


def test_too_few_cold_items_is_an_error() -> None:
    with pytest.raises(CLLM4RecError, match="fewer than 2 cold items"):
        build_dataset(_raw(n_items=40), PrepareOptions(cold_items=0.01))
