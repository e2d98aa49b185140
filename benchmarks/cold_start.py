"""Cold-start probe: how a trained run places new items, variant by variant (docs/BENCHMARKS.md "Cold-start").

    python benchmarks/cold_start.py --run RUN --data DATASET_WITH_COLD_ITEMS [--variants text:1:1 ...]
        [--split valid] [--json OUT.json]

A variant is ``features:passes:ridge[:fit[:word_dims or neighbours]]`` of ``PlacementOptions``
(model/new_items.py). Each prints the cold and all-items rankings of ``--split`` with the seconds its placement took.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

from cllm4rec.evaluation.cold import evaluate_cold
from cllm4rec.model.cold_recommender import NewItemsRecommender
from cllm4rec.model.new_items import PlacementOptions
from cllm4rec.serving.recommend import load_run

KEYS = ("recall@20", "recall@40", "ndcg@100")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="valid")
    parser.add_argument("--variants", nargs="+", default=["text:1:1"])
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    print(
        f"cpu {platform.processor() or platform.machine()}, threads {os.environ.get('OMP_NUM_THREADS', 'all')}, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    loaded = load_run(args.run, data=args.data)
    dataset = loaded.dataset(args.data)
    rows = []
    for variant in args.variants:
        parts = variant.split(":")
        features, passes, ridge, fit, dims = (parts + ["ridge", "256"][len(parts) - 3 :])[:5]
        extra = {"neighbours": int(dims)} if fit == "neighbours" else {"word_dims": int(dims)}
        options = PlacementOptions(features=features, passes=int(passes), ridge=float(ridge), fit=fit, **extra)
        rec = NewItemsRecommender(loaded.recommender, options).fit(dataset, split=args.split)
        t0 = time.perf_counter()
        result = evaluate_cold(rec, dataset, args.split)
        seconds = time.perf_counter() - t0
        row = {"variant": variant, "seconds": round(seconds, 1), "placement": rec.timings.get(args.split, {})}
        for ranking, ev in result.items():
            row[ranking] = {k: round(ev.metrics[k], 4) for k in KEYS}
        rows.append(row)
        rec.restore()
        print(
            f"{variant:<16} cold "
            + " ".join(f"{row['cold'][k]:.4f}" for k in KEYS)
            + "  all "
            + " ".join(f"{row['all'][k]:.4f}" for k in KEYS)
            + f"  ({seconds:.0f} s)",
            flush=True,
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
