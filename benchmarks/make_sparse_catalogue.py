"""Build a large, sparse catalogue from a prepared dataset by splitting every item into K rarely seen copies.

Each interaction of item j goes to one of its K copies at random (seeded), so the catalogue grows K-fold
while every copy is seen about 1/K as often: the regime of sparse Amazon categories (thousands of items,
a handful of interactions each), built from data the project may use. Writes RecBole atomic files
(``NAME.inter``, ``NAME.item`` with the titles) that ``cllm4rec data prepare --format recbole`` reads.

    python benchmarks/make_sparse_catalogue.py --data runs/ml100k --copies 8 --out runs/ml100k-x8-raw
    cllm4rec data prepare --format recbole --input runs/ml100k-x8-raw --out runs/ml100k-x8 --min-rating 0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cllm4rec.data import Dataset


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="a prepared dataset folder")
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--seed", type=int, default=98765)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    dataset = Dataset.load(args.data)
    rng = np.random.default_rng(args.seed)
    full = (dataset.train + dataset.split("valid") + dataset.split("test")).tocoo()
    copies = rng.integers(0, args.copies, size=full.nnz)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = out.name
    seen: set[tuple[int, int]] = set()
    with open(out / f"{name}.inter", "w", encoding="utf-8") as inter:
        inter.write("user_id:token\titem_id:token\trating:float\n")
        for u, j, c in zip(full.row, full.col, copies, strict=True):
            inter.write(f"{dataset.user_ids[u]}\t{dataset.item_ids[j]}-{c}\t5\n")
            seen.add((int(j), int(c)))
    with open(out / f"{name}.item", "w", encoding="utf-8") as item:
        item.write("item_id:token\tmovie_title:token_seq\n")
        for j, c in sorted(seen):
            title = (dataset.item_title(j) or "").replace("\t", " ")
            item.write(f"{dataset.item_ids[j]}-{c}\t{title} {c}\n")
    print(f"wrote {full.nnz} interactions over {len(seen)} items to {out}")


if __name__ == "__main__":
    main()
