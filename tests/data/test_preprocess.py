"""Preprocessing steps on hand-made raw datasets, and the text helpers."""

from __future__ import annotations

import numpy as np
import pytest

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data import RawDataset
from cllm4rec.data.dataset import Review
from cllm4rec.data.preprocess import id_sort_key, preprocess
from cllm4rec.data.text import join_list, normalize_text, readable_title, user_profile


def test_rating_filter_keeps_at_least_min_rating() -> None:
    raw = RawDataset(users=["a", "a", "b", "b"], items=["x", "y", "x", "y"], ratings=np.array([4, 3, 5, 3.5]))
    inter = preprocess(raw)
    pairs = {(inter.user_ids[u], inter.item_ids[i]) for u, i in zip(inter.users, inter.items, strict=True)}
    assert pairs == {("a", "x"), ("b", "x")}
    assert inter.item_ids == ["x"] and inter.counts == {"raw": 4, "after_rating_filter": 2, "after_merge": 2}
    assert len(preprocess(raw, min_rating=0).users) == 4
    assert len(preprocess(raw, min_rating=3.5).users) == 3


def test_no_ratings_means_all_positive() -> None:
    raw = RawDataset(users=["a", "b"], items=["x", "y"])
    assert len(preprocess(raw, min_rating=4).users) == 2


def test_merge_duplicates_keeps_latest_and_joins_reviews() -> None:
    raw = RawDataset(
        users=["a", "a", "a", "b"],
        items=["x", "x", "x", "x"],
        ratings=np.array([5, 4, 5, 5]),
        timestamps=np.array([30, 10, 20, 5]),
        reviews=["third", "first", "first", "  "],
    )
    inter = preprocess(raw)
    assert len(inter.users) == 2 and inter.counts["after_merge"] == 2
    assert inter.timestamps is not None
    np.testing.assert_array_equal(inter.timestamps, [30, 5])
    np.testing.assert_array_equal(inter.order, [0, 3])  # file row of the kept (latest) interaction
    assert inter.reviews == [Review(0, 0, "first\nthird")]  # distinct texts, oldest first; empty dropped


def test_iterative_kcore() -> None:
    # c has one item; dropping c leaves item z with one user, and so on
    users = ["a", "a", "a", "b", "b", "b", "c", "d"]
    items = ["x", "y", "z", "x", "y", "w", "z", "w"]
    raw = RawDataset(users=users, items=items)
    inter = preprocess(raw, kcore=2)
    assert inter.user_ids == ["a", "b"] and inter.item_ids == ["x", "y"]
    assert inter.counts["after_kcore"] == 4
    with pytest.raises(CLLM4RecError, match="3-core"):
        preprocess(raw, kcore=3)


def test_reindex_is_numeric_aware_and_canonical() -> None:
    raw = RawDataset(users=["10", "2", "b", "1", "a"], items=["003", "20", "3", "1", "x"])
    inter = preprocess(raw)
    assert inter.user_ids == ["1", "2", "10", "a", "b"]
    assert inter.item_ids == ["1", "003", "3", "20", "x"]  # equal values: by string
    assert list(inter.users) == sorted(inter.users)
    assert sorted(["10", "9", "x", "100"], key=id_sort_key) == ["9", "10", "100", "x"]


def test_texts_normalised_and_limited_to_survivors() -> None:
    raw = RawDataset(
        users=["a", "b"],
        items=["x", "y"],
        ratings=np.array([5, 1]),
        item_text={"x": {"title": " Caf&eacute;\n\tNoir ", "brand": "  "}, "y": {"title": "gone"}},
        user_text={"a": {"profile": "a  reader"}, "b": {"profile": "gone"}},
    )
    inter = preprocess(raw)
    assert inter.item_text == [{"title": "Café Noir"}]
    assert inter.user_text == [{"profile": "a reader"}]


def test_empty_after_filtering_is_an_error() -> None:
    raw = RawDataset(users=["a"], items=["x"], ratings=np.array([2.0]))
    with pytest.raises(CLLM4RecError, match="no interactions left after keeping ratings >= 4"):
        preprocess(raw)


def test_text_helpers() -> None:
    assert normalize_text("  a &amp;\n b  ") == "a & b"
    assert normalize_text(None) == ""
    assert readable_title("Usual Suspects, The") == "The Usual Suspects"
    assert readable_title("Enfer, L'") == "L'Enfer"
    assert readable_title("Heat") == "Heat"
    assert user_profile("24", "M", "technician") == "a 24-year-old male technician"
    assert user_profile("11", "F", "student") == "an 11-year-old female student"
    assert user_profile("33", "F", "marketing") == "a 33-year-old female working in marketing"
    assert user_profile("", "", "other") == ""
    assert join_list([["A", "B"], ["A", "C"]]) == "A, B, C"
