"""Read a source, preprocess it and split it: the one function behind ``cllm4rec data prepare``."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import scipy.sparse as sp

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data.cold import ColdItems, draw_cold_items
from cllm4rec.data.dataset import Dataset, Review
from cllm4rec.data.options import PrepareOptions, ReaderOptions
from cllm4rec.data.preprocess import Interactions, preprocess
from cllm4rec.data.raw import RawDataset
from cllm4rec.data.readers import read_raw
from cllm4rec.data.split import TEST, TRAIN, VALID, leave_last_out, random_split


def prepare_dataset(
    fmt: str,
    input: str | os.PathLike[str],
    meta: str | os.PathLike[str] | None = None,
    options: PrepareOptions | None = None,
    reader_options: ReaderOptions | None = None,
) -> Dataset:
    """Read ``input`` in format ``fmt`` (movielens, recbole, amazon, csv) and build the split dataset.

    The result is in memory; ``Dataset.save(out)`` writes the folder.
    """
    options = options or PrepareOptions()
    reader_options = reader_options or ReaderOptions()
    raw = read_raw(fmt, input, meta, reader_options)
    dataset = build_dataset(raw, options)
    dataset.meta["reader_options"] = reader_options.to_dict()
    return dataset


def build_dataset(raw: RawDataset, options: PrepareOptions | None = None) -> Dataset:
    """Preprocess and split a raw dataset (see :mod:`cllm4rec.data.preprocess` and :mod:`.split`)."""
    options = options or PrepareOptions()
    if options.split == "loo" and raw.timestamps is None:
        raise CLLM4RecError("--split loo needs timestamps, and this source has none (use --split random)")
    inter = preprocess(raw, options.min_rating, options.kcore)
    cold = None
    if options.cold_items > 0:
        inter, cold = split_cold(inter, options.cold_items, options.seed)
    if options.split == "loo":
        assert inter.timestamps is not None
        labels = leave_last_out(inter.users, inter.n_users, inter.timestamps, inter.order)
    else:
        labels = random_split(inter.users, inter.n_users, options.seed)
    shape = (inter.n_users, inter.n_items)
    mats = {}
    for name, code in (("train", TRAIN), ("valid", VALID), ("test", TEST)):
        m = labels == code
        mats[name] = sp.csr_matrix(
            (np.ones(int(m.sum()), dtype=np.float32), (inter.users[m], inter.items[m])), shape=shape
        )
    meta: dict[str, Any] = {
        "options": options.to_dict(),
        "seed": options.seed,
        "split": options.split,
        "split_rule": _split_rule(options.split),
        "source": raw.source,
        "preprocess": inter.counts,
        "has_ratings": raw.ratings is not None,
        "has_timestamps": raw.timestamps is not None,
    }
    if cold is not None:
        meta["cold_items"] = {"valid": cold.n_valid, "test": cold.n_items - cold.n_valid}
    return Dataset(
        train=mats["train"],
        valid=mats["valid"],
        test=mats["test"],
        user_ids=inter.user_ids,
        item_ids=inter.item_ids,
        item_text=inter.item_text,
        user_text=inter.user_text,
        reviews=inter.reviews,
        meta=meta,
        cold=cold,
    )


def split_cold(inter: Interactions, fraction: float, seed: int) -> tuple[Interactions, ColdItems]:
    """Move a seeded ``fraction`` of the items out of ``inter`` into cold items (:mod:`cllm4rec.data.cold`).

    The warm items keep their relative order; interactions stay in canonical (user, item) order, so the
    warm split that follows is as reproducible as without cold items."""
    cold_valid, cold_test = draw_cold_items(inter.n_items, fraction, seed)
    cold_order = np.concatenate([cold_valid, cold_test])
    is_cold = np.zeros(inter.n_items, dtype=bool)
    is_cold[cold_order] = True
    warm = np.flatnonzero(~is_cold)
    new_index = np.full(inter.n_items, -1, dtype=np.int64)
    new_index[warm] = np.arange(len(warm))
    cold_index = np.full(inter.n_items, -1, dtype=np.int64)
    cold_index[cold_order] = np.arange(len(cold_order))
    keep = ~is_cold[inter.items]
    moved = ~keep
    interactions = sp.csr_matrix(
        (np.ones(int(moved.sum()), dtype=np.float32), (inter.users[moved], cold_index[inter.items[moved]])),
        shape=(inter.n_users, len(cold_order)),
    )
    cold = ColdItems(
        [inter.item_ids[j] for j in cold_order],
        [inter.item_text[j] for j in cold_order],
        len(cold_valid),
        interactions,
    )
    warm_inter = dataclasses.replace(
        inter,
        users=inter.users[keep],
        items=new_index[inter.items[keep]],
        timestamps=None if inter.timestamps is None else inter.timestamps[keep],
        order=inter.order[keep],
        item_ids=[inter.item_ids[j] for j in warm],
        item_text=[inter.item_text[j] for j in warm],
        reviews=[Review(r.user, int(new_index[r.item]), r.text) for r in inter.reviews if not is_cold[r.item]],
        counts=dict(inter.counts, cold_items=len(cold_order), cold_interactions=int(moved.sum())),
    )
    return warm_inter, cold


def _split_rule(split: str) -> str:
    if split == "loo":
        return "per user with >= 3 interactions: latest -> test, second latest -> valid; others train-only"
    return (
        "per user with n >= 3 interactions: n_valid = n_test = max(1, floor(n/10 + 1/2)) at random "
        "(numpy default_rng(seed)); users with n < 3 train-only"
    )
