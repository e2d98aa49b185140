"""Time one validation round of a fitted EASE: scoring, then top-K + metrics, on a prepared dataset.

The fit (one Gram-matrix inverse) is cached in ``--cache`` (a .npy of the item-item weights), so runs of two
code versions time the same model and print metrics to compare digit for digit. Wall and CPU seconds are
both printed: on a shared machine the CPU time of this process is the steadier figure. torch is imported before the
clock starts (the ranking imports it lazily). Numbers in docs/BENCHMARKS.md ("Evaluation speed").

    python benchmarks/make_synthetic_catalogue.py --out /tmp/synthetic-beauty
    python benchmarks/eval_speed.py --data /tmp/synthetic-beauty --cache /tmp/ease-200.npy \
        [--reference-metrics OLD_CHECKOUT/src/cllm4rec/evaluation/metrics.py]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import torch  # noqa: F401  (imported up front: not part of the timed round)

from cllm4rec.baselines.runner import get_baseline
from cllm4rec.data import Dataset
from cllm4rec.evaluation import evaluate, metrics


def _module(path: str) -> ModuleType:
    """Another version of ``evaluation/metrics.py`` (e.g. from a checkout of an older commit)."""
    spec = importlib.util.spec_from_file_location("reference_metrics", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compare(reference: ModuleType, dataset: Dataset, weights: np.ndarray, split: str, repeats: int = 3) -> None:
    """CPU seconds of ``Evaluator.add`` (top-K + metrics) for one batch of 4,096 users, this version against
    ``reference``, on the EASE scores and on the same scores with every item outside each user's 50 best set
    to exactly 0 (ties at the top-100 boundary), with the metrics compared for equality."""
    known, heldout = dataset.known(split), dataset.split(split)
    users = metrics.Evaluator(heldout, known).users[:4096]
    scores = np.asarray(known[users] @ weights, dtype=np.float32)
    fiftieth = -np.partition(-scores, 49, axis=1)[:, 49:50]
    tied = np.where(scores >= fiftieth, scores, 0).astype(np.float32)
    for label, s in (("no ties", scores), ("ties at the boundary", tied)):
        cpu: dict[str, list[float]] = {"reference": [], "this": []}
        for _ in range(repeats):
            for name, module in (("reference", reference), ("this", metrics)):
                ev = module.Evaluator(heldout, known)
                start = time.process_time()
                ev.add(users, s)
                cpu[name].append(round(time.process_time() - start, 2))
        a, b = reference.Evaluator(heldout, known), metrics.Evaluator(heldout, known)
        a.add(users, s)
        b.add(users, s)
        same = all(np.array_equal(a._values[key][users], b._values[key][users]) for key in a.keys)
        print(f"{label}: CPU seconds per 4,096 users {cpu}; identical per-user metrics: {same}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--cache", required=True, help="weights .npy: written on the first run, read afterwards")
    ap.add_argument("--lam", type=float, default=200.0)
    ap.add_argument("--split", default="valid")
    ap.add_argument("--reference-metrics", help="another metrics.py to compare top-K + metrics against")
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

    if args.reference_metrics:
        compare(_module(args.reference_metrics), dataset, model.weights, args.split)


if __name__ == "__main__":
    main()
