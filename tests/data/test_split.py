"""The per-user random split and leave-last-out, on synthetic interactions."""

from __future__ import annotations

import numpy as np
import pytest

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data import PrepareOptions, RawDataset, build_dataset
from cllm4rec.data.split import TEST, TRAIN, VALID, holdout_size, leave_last_out, random_split


def test_holdout_size_rounds_half_up_with_a_minimum_of_one() -> None:
    n = np.array([0, 1, 2, 3, 4, 14, 15, 24, 25, 100, 304])
    np.testing.assert_array_equal(holdout_size(n), [0, 0, 0, 1, 1, 1, 2, 2, 3, 10, 30])


def _users(counts: list[int]) -> np.ndarray:
    return np.repeat(np.arange(len(counts)), counts)


def test_random_split_sizes_and_determinism() -> None:
    counts = [1, 2, 3, 4, 10, 15, 25, 40]
    users = _users(counts)
    labels = random_split(users, len(counts), seed=7)
    for u, n in enumerate(counts):
        lab = labels[users == u]
        h = int(holdout_size(np.array([n]))[0])
        assert (lab == TEST).sum() == h and (lab == VALID).sum() == h and (lab == TRAIN).sum() == n - 2 * h
    np.testing.assert_array_equal(labels, random_split(users, len(counts), seed=7))
    assert not np.array_equal(labels, random_split(users, len(counts), seed=8))


def test_leave_last_out_takes_latest_with_file_order_ties() -> None:
    users = np.array([0, 0, 0, 0, 1, 1])
    times = np.array([5.0, 9.0, 7.0, 9.0, 1.0, 2.0])
    order = np.array([0, 3, 1, 2, 4, 5])
    labels = leave_last_out(users, 2, times, order)
    # user 0: times 9 (row 3) and 9 (row 2) tie, the later file row (3) is the test one
    np.testing.assert_array_equal(labels, [TRAIN, TEST, TRAIN, VALID, TRAIN, TRAIN])


def test_build_dataset_loo_and_errors() -> None:
    raw = RawDataset(
        users=["a"] * 4 + ["b"] * 2,
        items=["w", "x", "y", "z", "x", "y"],
        timestamps=np.array([4, 3, 2, 1, 1, 2]),
    )
    ds = build_dataset(raw, PrepareOptions(split="loo"))
    assert ds.items_of(0, "test").tolist() == [0] and ds.items_of(0, "valid").tolist() == [1]
    assert ds.items_of(1, "train").tolist() == [1, 2] and ds.valid.nnz == 1
    with pytest.raises(CLLM4RecError, match="needs timestamps"):
        build_dataset(RawDataset(users=["a"], items=["x"]), PrepareOptions(split="loo"))
    with pytest.raises(CLLM4RecError, match="unknown split"):
        PrepareOptions(split="temporal")
    with pytest.raises(CLLM4RecError, match="kcore"):
        PrepareOptions(kcore=-1)
