"""Typed, validated options for reading a source and for turning it into a prepared dataset.

Defaults follow the paper (docs/DESIGN.md §6): positives are ratings > 3, a per-user random 80/10/10
split with a fixed seed, no extra k-core filtering (the Amazon 5-core files are already 5-core).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from cllm4rec.core.defaults import DATA_FORMATS as FORMATS
from cllm4rec.core.defaults import DEFAULT_SEED
from cllm4rec.core.errors import CLLM4RecError

SPLITS = ("random", "loo")


@dataclass(frozen=True)
class ReaderOptions:
    """How to find columns and text in a source file; every field is optional.

    Column names apply to ``csv`` (header names) and ``recbole`` (field names without ``:type``); ``None``
    means "find it by convention".
    """

    user_col: str | None = None
    """User ID column (csv default: user/user_id/userId/reviewerID; recbole: user_id)."""
    item_col: str | None = None
    """Item ID column (csv default: item/item_id/movieId/asin...; recbole: item_id)."""
    rating_col: str | None = None
    """Rating column; found by convention (rating/overall/score) when absent, else no ratings."""
    time_col: str | None = None
    """Timestamp column (unix seconds or ISO dates); found by convention (timestamp/time) when absent."""
    text_col: str | None = None
    """Review-text column; found by convention (review/text/review_text) when absent."""
    sep: str | None = None
    """csv delimiter; ``None`` sniffs it from the file (``,``/tab/``;``/``|``), falling back to ``,``."""
    item_text_fields: tuple[str, ...] | None = None
    """recbole ``.item`` columns used as item text, each ``col`` or ``col=name``; ``None``: by convention."""
    user_text_fields: tuple[str, ...] | None = None
    """recbole ``.user`` columns to use as user text; age/gender/occupation become one ``profile``."""

    def __post_init__(self) -> None:
        if self.sep is not None and len(self.sep) != 1:
            raise CLLM4RecError(f"--sep must be one character (or '\\t'), got {self.sep!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


@dataclass(frozen=True)
class PrepareOptions:
    """Preprocessing and splitting choices, recorded in the prepared folder's ``meta.json``."""

    min_rating: float = 4.0
    """Keep interactions with rating >= this (4 = the paper's "rating > 3"); 0 or less keeps all.
    Ignored when the source has no ratings (every interaction is then a positive)."""
    kcore: int = 0
    """Iteratively drop users and items with fewer than this many interactions; 0 = off."""
    split: str = "random"
    """``random``: the paper's per-user random 80/10/10 split; ``loo``: leave the last (by time) out."""
    seed: int = DEFAULT_SEED
    """Seed of ``numpy.random.default_rng`` for the random split: the same seed gives the same split."""
    cold_items: float = 0.0
    """Share of the items held out as cold-start items (half cold-validation, half cold-test; see
    :mod:`cllm4rec.data.cold`); 0 = none."""

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise CLLM4RecError(f"unknown split {self.split!r}; expected one of {', '.join(SPLITS)}")
        if isinstance(self.kcore, bool) or not isinstance(self.kcore, int) or self.kcore < 0:
            raise CLLM4RecError(f"--kcore must be a non-negative integer, got {self.kcore!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise CLLM4RecError(f"--seed must be a non-negative integer, got {self.seed!r}")
        if (
            isinstance(self.min_rating, bool)
            or not isinstance(self.min_rating, (int, float))
            or not math.isfinite(self.min_rating)
        ):
            raise CLLM4RecError(f"--min-rating must be a number, got {self.min_rating!r}")
        if (
            isinstance(self.cold_items, bool)
            or not isinstance(self.cold_items, (int, float))
            or not 0 <= self.cold_items < 1
        ):
            raise CLLM4RecError(f"--cold-items must be a fraction in [0, 1), got {self.cold_items!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_format(fmt: str) -> str:
    """The format name, or a one-line error listing the known ones."""
    if fmt not in FORMATS:
        raise CLLM4RecError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return fmt
