"""End to end on real data: Musical Instruments reviews (review corpus) and the real default backbone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cllm4rec.data import Dataset, Review, prepare_dataset
from cllm4rec.data.options import PrepareOptions
from cllm4rec.runs.config import load_config
from cllm4rec.training.runner import RunOptions, run_train


def subset(ds: Dataset, n_users: int) -> Dataset:
    """The first ``n_users`` users and the items they touch, re-indexed, texts carried along."""
    users = np.arange(n_users)
    full = (ds.train + ds.valid + ds.test)[users]
    items = np.unique(full.indices)
    remap = {int(j): k for k, j in enumerate(items)}
    mats = {s: ds.split(s)[users][:, items] for s in ("train", "valid", "test")}
    reviews = [Review(r.user, remap[r.item], r.text) for r in ds.reviews if r.user < n_users and r.item in remap]
    return Dataset(
        train=mats["train"],
        valid=mats["valid"],
        test=mats["test"],
        user_ids=[ds.user_ids[u] for u in users],
        item_ids=[ds.item_ids[j] for j in items],
        item_text=[ds.item_text[j] for j in items],
        user_text=[ds.user_text[u] for u in users],
        reviews=reviews,
    )


@pytest.mark.slow
def test_train_on_musical_instruments_reviews(amazon_mi_file: Path, tmp_path: Path) -> None:
    ds = prepare_dataset("amazon", amazon_mi_file, options=PrepareOptions(min_rating=0))
    small = subset(ds, 25)
    assert small.reviews and all(
        small.train[r.user, r.item] or small.valid[r.user, r.item] or small.test[r.user, r.item] for r in small.reviews
    )
    small.save(tmp_path / "data")
    config = load_config(
        overrides=[
            "model.backbone=smollm2-135m",
            "model.max_length=48",
            "pretrain.warmup_epochs=0",
            "pretrain.epochs=1",
            "pretrain.content_fraction=0.5",
            "finetune.epochs=1",
            "finetune.content_fraction=0.1",
        ]
    )
    result = run_train(tmp_path / "run", tmp_path / "data", config, RunOptions(seed=1, device="cpu", progress=False))
    row = json.loads((tmp_path / "run" / "pretrain" / "log.jsonl").read_text().splitlines()[0])
    # the review corpus was trained on: a word-level LM loss over real English text, far below uniform (ln 49152)
    assert 0 < row["content_loss"] < 8.0
    assert 0 < row["collab_loss"] < np.log(small.n_items) + 1.0
    assert result["metrics"]["n_users"] > 0 and result["checkpoint"] == "finetune/best"
