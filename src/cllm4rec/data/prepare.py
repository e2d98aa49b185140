"""Read a source, preprocess it and split it: the one function behind ``cllm4rec data prepare``."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.sparse as sp

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data.dataset import Dataset
from cllm4rec.data.options import PrepareOptions, ReaderOptions
from cllm4rec.data.preprocess import preprocess
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
    )


def _split_rule(split: str) -> str:
    if split == "loo":
        return "per user with >= 3 interactions: latest -> test, second latest -> valid; others train-only"
    return (
        "per user with n >= 3 interactions: n_valid = n_test = max(1, floor(n/10 + 1/2)) at random "
        "(numpy default_rng(seed)); users with n < 3 train-only"
    )
