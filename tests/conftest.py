"""Every shared fixture of the suite, in one place: real data locations, synthetic datasets, tiny backbones
and a tiny trained run.

Real data lives in ``../shared/data`` next to the repository. Where it is missing, its tests skip, except
under CI (``CI=true``), where a missing file is a failure: CI must never pass by skipping them silently.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from cllm4rec.backbone import LoadedBackbone, load_backbone
from cllm4rec.data import Dataset, Review, fetch_ml100k, prepare_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
ML100K = SHARED_DATA / "ml-100k"
AMAZON_MI = SHARED_DATA / "amazon-musical-instruments-5core-2014" / "reviews_Musical_Instruments_5.json.gz"
TINY_BACKBONES = ("tiny-gpt2", "tiny-llama")
GENRES = ["comedy", "drama", "action", "horror", "romance"]
TINY_RUN_OVERRIDES = [
    "model.backbone=tiny-llama",
    "model.bf16=false",
    "model.max_length=64",
    "pretrain.warmup_epochs=0",
    "pretrain.epochs=4",
    "finetune.epochs=3",
    "pretrain.lr=1e-2",
    "finetune.lr=1e-2",
    "pretrain.batch_size=8",
    "finetune.batch_size=8",
]
TINY_CLI_TRAIN_ARGS = [
    "--seed",
    "2",
    "--device",
    "cpu",
    "--no-progress",
    "model.backbone=tiny-llama",
    "model.bf16=false",
    "model.max_length=48",
    "pretrain.warmup_epochs=0",
    "pretrain.epochs=1",
    "finetune.epochs=1",
]
"""Options and overrides for a one-epoch ``cllm4rec pretrain/train`` on the tiny backbone (``tiny_cli_args``)."""
RUN_DATA = {"n_users": 60, "n_items": 80}
"""The tiny run's dataset: large enough that popularity is a real baseline to beat."""


def require_real_data(path: Path) -> Path:
    """``path`` when it exists; otherwise a skip, or a failure under CI."""
    if path.exists():
        return path
    message = f"real data not found at {path}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI must run every real-data test)")
    pytest.skip(message)


# ----- real data -----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    """The raw MovieLens 100K folder."""
    return require_real_data(ML100K / "u.data").parent


@pytest.fixture(scope="session")
def amazon_mi_file() -> Path:
    """The Amazon Musical Instruments 5-core reviews file."""
    return require_real_data(AMAZON_MI)


@pytest.fixture(scope="session")
def ml100k(ml100k_dir: Path) -> Dataset:
    """ML-100K prepared with the defaults (rating > 3, seeded per-user 80/10/10 split)."""
    return prepare_dataset("movielens", ml100k_dir)


@pytest.fixture(scope="session")
def ml100k_recbole_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MovieLens 100K as RecBole atomic files, fetched for real (pip download) into a fresh cache."""
    return fetch_ml100k(tmp_path_factory.mktemp("cache"))


# ----- synthetic datasets --------------------------------------------------------------------------------
def genre_dataset(n_users: int = 24, n_items: int = 30, seed: int = 0, text: bool = True) -> Dataset:
    """Users like items of their two favourite genres (learnable co-occurrence), with reviews and texts."""
    rng = np.random.default_rng(seed)
    item_genre = rng.integers(0, len(GENRES), n_items)
    rows: dict[str, list[tuple[int, int]]] = {"train": [], "valid": [], "test": []}
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
    mats = {name: _csr(pairs, (n_users, n_items)) for name, pairs in rows.items()}
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


def cluster_dataset(n_users: int = 60, n_items: int = 40, seed: int = 0) -> Dataset:
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
    return Dataset(
        _csr(parts["train"], shape),
        _csr(parts["valid"], shape),
        _csr(parts["test"], shape),
        user_ids=[f"u{i}" for i in range(n_users)],
        item_ids=[f"i{j}" for j in range(n_items)],
    )


def _csr(pairs: list[tuple[int, int]], shape: tuple[int, int]) -> sp.csr_matrix:
    arr = np.array(pairs, dtype=np.int64)
    return sp.csr_matrix((np.ones(len(arr), dtype=np.float32), (arr[:, 0], arr[:, 1])), shape=shape)


@pytest.fixture(scope="session")
def make_dataset() -> Callable[..., Dataset]:
    """The genre dataset builder (``make_dataset(seed=..., text=...)``)."""
    return genre_dataset


@pytest.fixture()
def id_mention_dataset() -> Dataset:
    """The genre dataset with a review and a title whose text names IDs (``item_5``, ``user_12``, ``item_999``)."""
    ds = genre_dataset()
    review = ds.reviews[0]
    ds.reviews[0] = Review(review.user, review.item, "better than item_5, says user_12 (not item_999)")
    ds.item_text[0]["title"] = "item_5 Returns: user_12's Revenge"
    return ds


@pytest.fixture()
def tiny_cli_args() -> list[str]:
    """A fresh copy of :data:`TINY_CLI_TRAIN_ARGS` for a CLI training call."""
    return list(TINY_CLI_TRAIN_ARGS)


@pytest.fixture()
def tiny_data_dir(tmp_path: Path) -> Path:
    """A saved genre dataset folder."""
    path = tmp_path / "data"
    genre_dataset().save(path)
    return path


@pytest.fixture()
def tiny() -> Dataset:
    """A small two-cluster dataset with structure a personalised model can find."""
    return cluster_dataset()


# ----- backbones and a trained run -----------------------------------------------------------------------
@pytest.fixture(scope="session", params=TINY_BACKBONES)
def tiny_backbone(request: pytest.FixtureRequest) -> LoadedBackbone:
    """Each tiny backbone in turn (tests using it run once per architecture)."""
    return load_backbone(request.param)


@pytest.fixture(scope="session")
def run_dataset() -> Dataset:
    """The dataset ``tiny_run`` is trained on (not saved: ``tiny_run`` keeps its own folder)."""
    return genre_dataset(**RUN_DATA)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, run_dataset: Dataset) -> Path:
    """A run folder trained end to end (tiny-llama, 60 x 80 genre dataset): pretrain, finetune, test metrics.

    Its dataset folder is the sibling ``data/``; tests must not change either (copy them first).
    """
    from cllm4rec.runs.config import load_config
    from cllm4rec.training.runner import RunOptions, run_train

    root = tmp_path_factory.mktemp("served")
    run_dataset.save(root / "data")
    config = load_config(overrides=TINY_RUN_OVERRIDES)
    run_train(root / "run", root / "data", config, RunOptions(seed=1, device="cpu", progress=False))
    return root / "run"


@pytest.fixture(scope="session")
def tiny_loaded(tiny_run: Path):
    """``tiny_run`` loaded once for the HTTP tests (as ``cllm4rec serve`` does at start-up)."""
    from cllm4rec.serving.recommend import load_run

    return load_run(tiny_run, device="cpu")
