"""Validation Recall@20 against wall-clock minutes for trained run folders, with baselines as horizontal lines.

Reads each run's ``pretrain/log.jsonl`` and ``finetune/log.jsonl`` (epoch seconds and validation metrics,
where validation ran) and draws one curve per run; baselines come from ``cllm4rec baseline --json`` files.

    python benchmarks/learning_curves.py --runs runs/quickstart/run runs/R1-levers \
        --labels "quick" "quick, 3 levers" --baselines ease.json multivae.json --out docs/learning_curves.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

METRIC = "valid_recall@20"


def curve(run: Path) -> tuple[list[float], list[float]]:
    """(minutes since the start of training, validation Recall@20) at every validated epoch of both stages."""
    minutes, values, elapsed = [], [], 0.0
    for stage in ("pretrain", "finetune"):
        log = run / stage / "log.jsonl"
        if not log.is_file():
            continue
        for line in log.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            elapsed += float(row.get("seconds", 0.0)) / 60
            if METRIC in row:
                minutes.append(elapsed)
                values.append(float(row[METRIC]))
    return minutes, values


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", nargs="+", required=True)
    ap.add_argument("--labels", nargs="+")
    ap.add_argument("--baselines", nargs="*", default=[], help="JSON files written by 'cllm4rec baseline --json'")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    labels = args.labels or [Path(r).name for r in args.runs]
    if len(labels) != len(args.runs):
        raise SystemExit("--labels must name every run")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for run, label in zip(args.runs, labels, strict=True):
        xs, ys = curve(Path(run))
        if xs:
            ax.plot(xs, ys, marker="o", ms=4, label=label)
    for path in args.baselines:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
        ax.axhline(result["valid"]["recall@20"], ls="--", lw=1, color="gray")
        ax.text(ax.get_xlim()[0], result["valid"]["recall@20"], f" {result['name']}", va="bottom", fontsize=8)
    ax.set(xlabel="training wall-clock (minutes, as logged)", ylabel="validation Recall@20")
    ax.set_title("CLLM4Rec learning curves on ML-100K")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
