"""Time one validation round of a fitted EASE: scoring, then top-K + metrics, on a prepared dataset.

The fit (one Gram-matrix inverse) is cached in ``--cache`` (a .npy of the item-item weights), so runs of two
code versions time the same model and print metrics to compare digit for digit. Wall and CPU seconds are
both printed: on a shared machine the CPU time of this process is the steadier figure. torch is imported before the
clock starts (the ranking imports it lazily). Numbers in docs/BENCHMARKS.md ("Evaluation speed").

    python benchmarks/make_synthetic_catalogue.py --out /tmp/synthetic-beauty
    python benchmarks/eval_speed.py --data /tmp/synthetic-beauty --cache /tmp/ease-200.npy
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch  # noqa: F401  (imported up front: not part of the timed round)

from cllm4rec.baselines.runner import get_baseline
from cllm4rec.data import Dataset
from cllm4rec.evaluation import evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--cache", required=True, help="weights .npy: written on the first run, read afterwards")
    ap.add_argument("--lam", type=float, default=200.0)
    ap.add_argument("--split", default="valid")
    args = ap.parse_args()
    dataset = Dataset.load(args.data)
    model = get_baseline("ease", lam=args.lam)
    cache = Path(args.cache)
    if cache.exists():
        model.weights = np.load(cache)
    else:
        start = time.perf_counter()
        model.fit(dataset, split=args.split)
        print(f"fit {time.perf_counter() - start:.1f} s (cached in {cache})")
        np.save(cache, model.weights)
    start, cpu = time.perf_counter(), time.process_time()
    result = evaluate(model, dataset, args.split)
    total, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(
        json.dumps(
            {
                "round_seconds": round(total, 2),
                "round_cpu_seconds": round(cpu, 2),  # this process only: robust on a shared machine
                "score_seconds": round(result.score_seconds, 2),
                "topk_and_metrics_seconds": round(total - result.score_seconds, 2),
                "metrics": result.metrics,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
