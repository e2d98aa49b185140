"""Write a seeded synthetic prepared dataset shaped like a sparse Amazon 5-core category.

Defaults match the shape of Amazon Beauty 5-core (22,363 users, 12,101 items, about 198.5k interactions,
so about 6.5 training items per user after the 80/10/10 split): every user has at least 5 items, the extra
history length is geometric, and items are drawn with power-law popularity (weight ``1 / (rank + 10)^a``),
without repeats within a user. Every item appears at least once, so the catalogue has exactly ``--items``
columns. No texts: the folder serves the baselines and the evaluation benchmarks
(docs/BENCHMARKS.md, "Evaluation speed").

    python benchmarks/make_synthetic_catalogue.py --out /tmp/synthetic-beauty
    cllm4rec baseline --data /tmp/synthetic-beauty --model ease
"""

from __future__ import annotations

import argparse

import numpy as np

from cllm4rec.data.options import PrepareOptions
from cllm4rec.data.prepare import build_dataset
from cllm4rec.data.raw import RawDataset


def synthetic_interactions(
    n_users: int, n_items: int, n_interactions: int, alpha: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(users, items) index columns: at least 5 distinct items per user, power-law item popularity."""
    rng = np.random.default_rng(seed)
    extra_mean = max(0.0, n_interactions / n_users - 5.0)
    lengths = 5 + rng.geometric(1.0 / (1.0 + extra_mean), size=n_users) - 1  # (I,)
    lengths = np.minimum(lengths, n_items)
    weights = 1.0 / (np.arange(n_items) + 10.0) ** alpha
    weights = weights[rng.permutation(n_items)]  # popularity rank independent of the item index
    weights /= weights.sum()
    users = np.repeat(np.arange(n_users), lengths)
    items = np.concatenate([rng.choice(n_items, size=n, replace=False, p=weights) for n in lengths])
    unseen = np.setdiff1d(np.arange(n_items), items)  # give every item one interaction
    extra_users = rng.integers(0, n_users, size=len(unseen))
    return np.concatenate([users, extra_users]), np.concatenate([items, unseen])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="the prepared dataset folder to write")
    ap.add_argument("--users", type=int, default=22_363)
    ap.add_argument("--items", type=int, default=12_101)
    ap.add_argument("--interactions", type=int, default=198_502)
    ap.add_argument("--alpha", type=float, default=1.0, help="power-law exponent of item popularity")
    ap.add_argument("--seed", type=int, default=98765)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    users, items = synthetic_interactions(args.users, args.items, args.interactions, args.alpha, args.seed)
    raw = RawDataset(
        users=[f"u{u}" for u in users],
        items=[f"i{j}" for j in items],
        source={"format": "synthetic", "generator": "benchmarks/make_synthetic_catalogue.py", **vars(args)},
    )
    dataset = build_dataset(raw, PrepareOptions(min_rating=0, seed=args.seed))
    path = dataset.save(args.out, force=args.force)
    counts = {name: int(dataset.split(name).nnz) for name in ("train", "valid", "test")}
    print(f"wrote {path}: {dataset.n_users} users, {dataset.n_items} items, interactions {counts}")


if __name__ == "__main__":
    main()
