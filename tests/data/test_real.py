"""The counts and split properties the paper's protocol must give on the real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from cllm4rec.data import Dataset, PrepareOptions, dataset_stats, prepare_dataset


@pytest.fixture(scope="module")
def ml100k(ml100k_dir: Path) -> Dataset:
    return prepare_dataset("movielens", ml100k_dir)


def _pairs(ds: Dataset, split: str) -> set[tuple[str, str]]:
    coo = ds.split(split).tocoo()
    return {(ds.user_ids[u], ds.item_ids[i]) for u, i in zip(coo.row.tolist(), coo.col.tolist(), strict=True)}


def _check_split(ds: Dataset) -> None:
    """Disjoint splits; every user with >= 3 interactions has validation and test items."""
    total = (ds.train + ds.valid + ds.test).tocsr()
    assert total.max() == 1  # no pair in two splits
    n = np.diff(total.indptr)
    has_valid = np.diff(ds.valid.indptr) > 0
    has_test = np.diff(ds.test.indptr) > 0
    assert np.all(has_valid[n >= 3]) and np.all(has_test[n >= 3])
    assert not np.any(has_valid[n < 3]) and not np.any(has_test[n < 3])
    assert np.all(np.diff(ds.train.indptr) >= 1)


def test_ml100k_movielens_counts_and_split(ml100k: Dataset, ml100k_dir: Path) -> None:
    ds = ml100k
    assert (ds.n_users, ds.n_items) == (942, 1447)
    assert ds.train.nnz + ds.valid.nnz + ds.test.nnz == 55_376
    _check_split(ds)
    # the union is exactly the rating > 3 interactions of u.data
    rows = np.loadtxt(ml100k_dir / "u.data", dtype=np.int64)
    expected = {(str(u), str(i)) for u, i, r, _ in rows.tolist() if r > 3}
    assert _pairs(ds, "train") | _pairs(ds, "valid") | _pairs(ds, "test") == expected
    assert ds.user_ids[:3] == ["1", "2", "3"] and ds.user_ids[9] == "10"
    assert ds.item_text[ds.item_index["1"]]["title"] == "Toy Story"
    assert ds.user_text[ds.user_index["1"]] == {"profile": "a 24-year-old male technician"}


def test_ml100k_split_depends_only_on_seed(ml100k: Dataset, ml100k_dir: Path) -> None:
    again = prepare_dataset("movielens", ml100k_dir, options=PrepareOptions(seed=98765))
    assert again.content_hash() == ml100k.content_hash()
    for s in ("train", "valid", "test"):
        assert (again.split(s) != ml100k.split(s)).nnz == 0
    other = prepare_dataset("movielens", ml100k_dir, options=PrepareOptions(seed=1))
    assert other.content_hash() != ml100k.content_hash()
    assert (other.test != ml100k.test).nnz > 0
    _check_split(other)


def test_ml100k_save_load_round_trip(ml100k: Dataset, tmp_path: Path) -> None:
    ml100k.save(tmp_path / "ml")
    loaded = Dataset.load(tmp_path / "ml")
    assert loaded.content_hash() == ml100k.content_hash() == loaded.meta["content_hash"]
    assert loaded.meta["source"]["format"] == "movielens"
    assert set(loaded.meta["source"]["files"]) >= {"u.data", "u.item", "u.user"}
    assert loaded.meta["options"] == {
        "min_rating": 4.0,
        "kcore": 0,
        "split": "random",
        "seed": 98765,
        "cold_items": 0.0,
    }
    stats = dataset_stats(loaded)
    assert stats["interactions"]["total"] == 55_376 and stats["users_with_heldout"] == {
        "valid": 942,
        "test": 942,
    }
    assert stats["text_coverage"]["users_with_text"] == 1.0


def test_ml100k_loo(ml100k_dir: Path) -> None:
    ds = prepare_dataset("movielens", ml100k_dir, options=PrepareOptions(split="loo"))
    assert ds.valid.nnz == ds.test.nnz == 942
    _check_split(ds)


def test_ml100k_recbole_copy(ml100k_recbole_dir: Path, ml100k: Dataset) -> None:
    ds = prepare_dataset("recbole", ml100k_recbole_dir)
    assert (ds.n_users, ds.n_items) == (942, 1447)
    assert ds.train.nnz + ds.valid.nnz + ds.test.nnz == 55_375  # RecBole's file differs in one rating
    _check_split(ds)
    assert ds.user_ids == ml100k.user_ids and ds.item_ids == ml100k.item_ids
    # both readers describe the movies the same way (RecBole has no wiki descriptions)
    differ = [
        ds.item_ids[k]
        for k, (a, b) in enumerate(zip(ds.item_text, ml100k.item_text, strict=True))
        if a != {f: v for f, v in b.items() if f != "description"}
    ]
    # u.item lost these titles' accents (U+FFFD); RecBole's copy kept them
    assert differ == ["543", "1005", "1104", "1233", "1252", "1623"]
    assert "\ufffd" in ml100k.item_text[ml100k.item_index["543"]]["title"]
    assert ds.item_text[ds.item_index["543"]]["title"] == "Les Misérables"
    assert ds.item_text[ds.item_index["267"]] == {}  # RecBole's "unkonwn" placeholders are dropped
    differ = [ds.user_ids[k] for k, (a, b) in enumerate(zip(ds.user_text, ml100k.user_text, strict=True)) if a != b]
    assert differ == ["104"]  # RecBole's ml-100k.user gives user 104 the other gender


def test_amazon_musical_instruments(amazon_mi_file: Path) -> None:
    ds = prepare_dataset("amazon", amazon_mi_file, options=PrepareOptions(min_rating=0))
    assert (ds.n_users, ds.n_items) == (1429, 900)
    total = ds.train + ds.valid + ds.test
    assert total.nnz == 10_261 and len(ds.reviews) == 10_261
    _check_split(ds)
    u, i = ds.user_index["A2IBPI20UZIR0U"], ds.item_index["1384719342"]
    texts = [r.text for r in ds.reviews if (r.user, r.item) == (u, i)]
    assert len(texts) == 1 and texts[0].startswith("good. Not much to write about here, but it does exactly")
    assert sp.csr_matrix(total)[u, i] == 1
    assert dataset_stats(ds)["text_coverage"]["interactions_with_review"] == 1.0
    positives = prepare_dataset("amazon", amazon_mi_file)  # default: ratings >= 4 only
    assert positives.train.nnz + positives.valid.nnz + positives.test.nnz < 10_261
