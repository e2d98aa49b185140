"""From a raw dataset to clean, re-indexed positives: rating filter, duplicate merge, k-core, text clean-up.

Steps, in this order:

1. Rating filter: keep rows with ``rating >= min_rating`` (default 4, i.e. the paper's "rating > 3"); with
   ``min_rating <= 0`` or a source without ratings every row is kept.
2. Merge duplicate (user, item) pairs: the merged pair takes the latest timestamp (ties and sources without
   timestamps: the later row in the file); their distinct review texts are joined, oldest first.
3. Optional iterative k-core: drop users and items with fewer than ``kcore`` interactions until none is left.
4. Re-index users and items to ``0..n-1`` in sorted order of their external IDs, numeric-aware (all-digit
   IDs first, by value, so MovieLens user "2" < "10"; then the others as strings).
5. Text: HTML entities unescaped, whitespace collapsed, stripped; empty texts and fields dropped. Only users
   and items that survive keep their text.

The result lists interactions in canonical (user, item) order, which makes the seeded split reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data.dataset import Review
from cllm4rec.data.idmap import IDMaps
from cllm4rec.data.raw import RawDataset
from cllm4rec.data.text import normalize_fields, normalize_text


@dataclass
class Interactions(IDMaps):
    """Positive interactions after preprocessing, sorted by (user, item), with their texts."""

    users: np.ndarray
    """User index per interaction (int64)."""
    items: np.ndarray
    """Item index per interaction (int64)."""
    timestamps: np.ndarray | None
    """Timestamp of the kept (latest) row per interaction, or ``None`` when the source has none."""
    order: np.ndarray
    """File position of the kept row: breaks timestamp ties (the later row counts as later)."""
    user_ids: list[str]
    item_ids: list[str]
    user_text: list[dict[str, str]]
    item_text: list[dict[str, str]]
    reviews: list[Review]
    counts: dict[str, int] = field(default_factory=dict)
    """Number of interactions after each step, for the record in ``meta.json``."""


def id_sort_key(ext: str) -> tuple[int, int, str]:
    """Numeric-aware order: all-digit IDs by value first, then the rest as strings."""
    if ext.isascii() and ext.isdigit():
        return (0, int(ext), ext)
    return (1, 0, ext)


def preprocess(raw: RawDataset, min_rating: float = 4.0, kcore: int = 0) -> Interactions:
    """Apply the steps in the module docstring; an empty result is a user-facing error."""
    n_raw = len(raw)
    counts = {"raw": n_raw}
    if n_raw == 0:
        raise CLLM4RecError("the input holds no interactions")
    rows = np.arange(n_raw)
    if raw.ratings is not None and min_rating > 0:
        rows = np.flatnonzero(raw.ratings >= min_rating)
    counts["after_rating_filter"] = len(rows)
    if len(rows) == 0:
        raise CLLM4RecError(
            f"no interactions left after keeping ratings >= {min_rating:g} "
            f"(ratings range {raw.ratings.min():g}..{raw.ratings.max():g}); lower --min-rating"
        )

    user_ext = np.asarray(raw.users, dtype=str)[rows]
    item_ext = np.asarray(raw.items, dtype=str)[rows]
    user_uni, u = np.unique(user_ext, return_inverse=True)
    item_uni, i = np.unique(item_ext, return_inverse=True)
    ts = raw.timestamps[rows] if raw.timestamps is not None else np.zeros(len(rows))

    # merge duplicates: sort by pair, then time, then file position; the last row of each pair wins
    pair = u.astype(np.int64) * len(item_uni) + i
    srt = np.lexsort((rows, ts, pair))
    pair_sorted = pair[srt]
    first = np.ones(len(srt), dtype=bool)
    first[1:] = pair_sorted[1:] != pair_sorted[:-1]
    last = np.ones(len(srt), dtype=bool)
    last[:-1] = first[1:]
    keep = srt[last]  # positions (into rows) of the representative rows, in pair order
    texts = _merged_reviews(raw.reviews, rows, srt, first) if raw.reviews is not None else None
    u, i, ts, pos = u[keep], i[keep], ts[keep], rows[keep]
    counts["after_merge"] = len(keep)

    if kcore > 0:
        alive = _kcore_mask(u, i, kcore)
        u, i, ts, pos = u[alive], i[alive], ts[alive], pos[alive]
        if texts is not None:
            texts = [t for t, a in zip(texts, alive, strict=True) if a]
        counts["after_kcore"] = len(u)
        if len(u) == 0:
            raise CLLM4RecError(f"no interactions left after {kcore}-core filtering; lower --kcore")

    user_ids, u = _reindex(user_uni, u)
    item_ids, i = _reindex(item_uni, i)
    canon = np.lexsort((i, u))
    u, i, ts, pos = u[canon], i[canon], ts[canon], pos[canon]

    reviews: list[Review] = []
    if texts is not None:
        reviews = [
            Review(int(uu), int(ii), texts[k])
            for uu, ii, k in zip(u.tolist(), i.tolist(), canon.tolist(), strict=True)
            if texts[k]
        ]
    return Interactions(
        users=u,
        items=i,
        timestamps=ts if raw.timestamps is not None else None,
        order=pos,
        user_ids=user_ids,
        item_ids=item_ids,
        user_text=[normalize_fields(raw.user_text.get(e, {})) for e in user_ids],
        item_text=[normalize_fields(raw.item_text.get(e, {})) for e in item_ids],
        reviews=reviews,
        counts=counts,
    )


def _merged_reviews(reviews: list[str], rows: np.ndarray, srt: np.ndarray, first: np.ndarray) -> list[str]:
    """One normalised text per merged pair (in pair order): the distinct texts of its rows, oldest first."""
    out: list[str] = []
    starts = np.flatnonzero(first).tolist() + [len(srt)]
    file_rows = rows[srt].tolist()
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        if b - a == 1:
            out.append(normalize_text(reviews[file_rows[a]]))
            continue
        parts: list[str] = []
        for r in file_rows[a:b]:
            t = normalize_text(reviews[r])
            if t and t not in parts:
                parts.append(t)
        out.append("\n".join(parts))
    return out


def _kcore_mask(u: np.ndarray, i: np.ndarray, k: int) -> np.ndarray:
    """Rows that survive iterative k-core filtering (every user and item keeps >= k interactions)."""
    alive = np.ones(len(u), dtype=bool)
    while True:
        uc = np.bincount(u[alive], minlength=int(u.max()) + 1)
        ic = np.bincount(i[alive], minlength=int(i.max()) + 1)
        ok = alive & (uc[u] >= k) & (ic[i] >= k)
        if ok.sum() == alive.sum():
            return alive
        alive = ok


def _reindex(uniques: np.ndarray, codes: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Map the codes still in use to 0..n-1 in :func:`id_sort_key` order; return the IDs and new codes."""
    used = np.unique(codes)
    ids = sorted((str(e) for e in uniques[used]), key=id_sort_key)
    position = {e: k for k, e in enumerate(ids)}
    remap = np.full(len(uniques), -1, dtype=np.int64)
    remap[used] = [position[str(e)] for e in uniques[used]]
    return ids, remap[codes]
