"""Summary statistics of a prepared dataset: what ``cllm4rec data stats`` prints."""

from __future__ import annotations

from typing import Any

import numpy as np

from cllm4rec.data.dataset import SPLITS, Dataset

PERCENTILES = {"min": 0, "p25": 25, "p50": 50, "p75": 75, "p90": 90, "max": 100}


def dataset_stats(ds: Dataset) -> dict[str, Any]:
    """Counts, density, train history-length percentiles and text coverage, as plain JSON-able values."""
    per_split = {s: int(ds.split(s).nnz) for s in SPLITS}
    total = sum(per_split.values())
    cells = ds.n_users * ds.n_items
    lengths = np.diff(ds.train.indptr)
    history = {k: float(np.percentile(lengths, q)) if len(lengths) else 0.0 for k, q in PERCENTILES.items()}
    history["mean"] = float(lengths.mean()) if len(lengths) else 0.0
    reviewed = {(r.user, r.item) for r in ds.reviews}
    cold = None
    if ds.cold is not None:
        cold = {
            split: {
                "items": len(ds.cold.columns(split)),
                "interactions": int(ds.cold.interactions[:, ds.cold.columns(split)].nnz),
                "users": int(np.count_nonzero(np.diff(ds.cold.interactions[:, ds.cold.columns(split)].tocsr().indptr))),
            }
            for split in ("valid", "test")
        }
    return {
        "users": ds.n_users,
        "items": ds.n_items,
        "interactions": {**per_split, "total": total},
        "users_with_heldout": {s: int(np.count_nonzero(np.diff(ds.split(s).indptr))) for s in ("valid", "test")},
        "density": total / cells if cells else 0.0,
        "train_history_length": history,
        "text_coverage": {
            "items_with_text": _share(sum(1 for f in ds.item_text if f), ds.n_items),
            "users_with_text": _share(sum(1 for f in ds.user_text if f), ds.n_users),
            "interactions_with_review": _share(len(reviewed), total),
            "item_fields": _field_counts(ds.item_text),
            "user_fields": _field_counts(ds.user_text),
        },
        "cold_items": cold,
    }


def format_stats(stats: dict[str, Any]) -> str:
    """A short human-readable table of :func:`dataset_stats`."""
    inter = stats["interactions"]
    hist = stats["train_history_length"]
    cov = stats["text_coverage"]
    lines = [
        f"users         {stats['users']:,}",
        f"items         {stats['items']:,}",
        f"interactions  {inter['total']:,} "
        f"(train {inter['train']:,}, valid {inter['valid']:,}, test {inter['test']:,})",
        f"density       {stats['density']:.4%}",
        "train history " + ", ".join(f"{k} {hist[k]:g}" for k in (*PERCENTILES, "mean") if k in hist),
        f"item text     {cov['items_with_text']:.1%} of items"
        + (f" ({', '.join(cov['item_fields'])})" if cov["item_fields"] else ""),
        f"user text     {cov['users_with_text']:.1%} of users"
        + (f" ({', '.join(cov['user_fields'])})" if cov["user_fields"] else ""),
        f"reviews       {cov['interactions_with_review']:.1%} of interactions",
    ]
    cold = stats.get("cold_items")
    if cold:
        lines.append(
            "cold items    "
            + ", ".join(
                f"{split} {c['items']:,} items ({c['interactions']:,} interactions, {c['users']:,} users)"
                for split, c in cold.items()
            )
        )
    return "\n".join(lines)


def _share(n: int, total: int) -> float:
    return n / total if total else 0.0


def _field_counts(table: list[dict[str, str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for fields in table:
        for key in fields:
            counts[key] = counts.get(key, 0) + 1
    return counts
