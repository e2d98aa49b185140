"""``make quickstart``: the main job end to end on MovieLens 100K.

1. fetch ML-100K (from the RecBole wheel) and prepare it with the paper's protocol;
2. print its statistics;
3. train CLLM4Rec with the ``quick`` preset on the default backbone (resuming if interrupted);
4. print the test metrics next to popularity and EASE on the same split;
5. show the top-10 for one user with item titles.

Everything lands in ``runs/quickstart/`` (override with ``CLLM4REC_QUICKSTART_DIR``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main() -> int:
    from cllm4rec.data import Dataset, dataset_stats, fetch_ml100k, prepare_dataset
    from cllm4rec.data.stats import format_stats

    root = Path(os.environ.get("CLLM4REC_QUICKSTART_DIR", "runs/quickstart"))
    data_dir, run_dir = root / "ml-100k", root / "run"
    started = time.perf_counter()

    print("== 1. data: fetch and prepare MovieLens 100K", flush=True)
    raw_dir = fetch_ml100k()
    print(f"raw files: {raw_dir}")
    if (data_dir / "meta.json").is_file():
        dataset = Dataset.load(data_dir)
        print(f"prepared dataset: {data_dir} (reused)")
    else:
        dataset = prepare_dataset("recbole", raw_dir)
        dataset.save(data_dir)
        print(f"prepared dataset: {data_dir}")

    print("\n== 2. statistics", flush=True)
    print(format_stats(dataset_stats(dataset)))

    print("\n== 3. train CLLM4Rec (preset 'quick', default backbone)", flush=True)
    from cllm4rec.runs.config import load_config
    from cllm4rec.runs.folder import RunFolder
    from cllm4rec.training.runner import RunOptions, run_train

    run = RunFolder(run_dir)
    if (run_dir / "metrics.json").is_file():
        print(f"run folder {run_dir} is complete (reused; delete it to train again)")
        import json

        result = json.loads((run_dir / "metrics.json").read_text())
    else:
        resume = run.exists and (run.last("pretrain") / "state.json").is_file()
        config = None if resume else load_config("quick")
        result = run_train(run_dir, data_dir, config, RunOptions(resume=resume, force=not resume))

    print("\n== 4. test metrics (same split)", flush=True)
    from cllm4rec.baselines.runner import run_baseline
    from cllm4rec.evaluation import DEFAULT_SELECTION_KEYS as keys

    rows = {"CLLM4Rec": result["metrics"]}
    for name, label in (("pop", "popularity"), ("ease", "EASE")):  # fit and tuned on the same split
        rows[label] = run_baseline(name, dataset, progress=False).test
    print(f"{'method':<12}" + "".join(f"{k:>12}" for k in keys))
    for label, metrics in rows.items():
        print(f"{label:<12}" + "".join(f"{metrics[k]:>12.4f}" for k in keys))

    print("\n== 5. top-10 for one user", flush=True)
    from cllm4rec.serving import Query, load_run, recommend

    loaded = load_run(run_dir)
    user = dataset.user_ids[0]
    print(
        f"user {user}, who liked e.g.: "
        + "; ".join(dataset.item_title(j) or dataset.item_ids[j] for j in dataset.items_of(0)[:3])
    )
    for rec in recommend(loaded, [Query(user=user)], k=10)[0]:
        print(f"{rec.rank:>3}. {rec.title or rec.item}  (item {rec.item}, score {rec.score:.3f})")
    print(f"\nquickstart finished in {time.perf_counter() - started:.0f} s; outputs in {root}/")
    return 0


if __name__ == "__main__":
    from cllm4rec.core.errors import CLLM4RecError

    try:
        sys.exit(main())
    except CLLM4RecError as exc:
        print(f"cllm4rec: error: {exc}", file=sys.stderr)
        sys.exit(2)
