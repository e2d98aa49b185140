"""``cllm4rec benchmark``: classic baselines and CLLM4Rec runs on the same split, one table and one plot."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cllm4rec.baselines import BASELINES
from cllm4rec.core.defaults import DEFAULT_SEED
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.core.files import atomic_dir
from cllm4rec.data import Dataset
from cllm4rec.evaluation import DEFAULT_SELECTION_KEYS, metric_title
from cllm4rec.runs.folder import STAGES, RunFolder

COLUMNS = DEFAULT_SELECTION_KEYS


@dataclass
class Row:
    """One method's test result."""

    method: str
    kind: str
    metrics: dict[str, float]
    train_seconds: float | None
    score_seconds_per_1k_users: float
    detail: str = ""


def run_benchmark(
    data: str | Path,
    out: str | Path,
    *,
    runs: list[str] | None = None,
    baselines: list[str] | None = None,
    seed: int = DEFAULT_SEED,
    device: str = "auto",
    force: bool = False,
) -> str:
    """Evaluate everything on the test split, write results.{md,json,png} into ``out``; return the table."""
    from cllm4rec.baselines.runner import run_baseline

    dataset = Dataset.load(data)
    runs, baselines = list(runs or []), list(baselines or [])
    if not runs and not baselines:
        raise CLLM4RecError("nothing to compare: give --runs and/or --baselines")
    for name in baselines:
        if name not in BASELINES:
            raise CLLM4RecError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    for run in runs:
        RunFolder(Path(run)).final()  # a clear error for anything that is not a trained run folder
    if Path(out).exists() and not force:
        raise CLLM4RecError(f"output folder {out} already exists (use --force to overwrite)")
    rows: list[Row] = []
    for name in baselines:
        started = time.perf_counter()
        res = run_baseline(name, dataset, seed=seed, progress=True)
        params = ", ".join(f"{k}={v}" for k, v in res.params.items() if k != "seed")
        rows.append(
            Row(
                BASELINES[name].label,
                "baseline",
                res.test,
                round(time.perf_counter() - started, 2),
                res.score_seconds_per_1k_users,
                params,
            )
        )
    for run in runs:
        rows.append(_evaluate_run(Path(run), dataset, device))
    table = format_table(rows, dataset)
    with atomic_dir(out, force=force) as tmp:
        (tmp / "results.md").write_text(table + "\n", encoding="utf-8")
        (tmp / "results.json").write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n", encoding="utf-8")
        plot_results(rows, tmp / "results.png")
    return table


def _evaluate_run(run: Path, dataset: Dataset, device: str) -> Row:
    from cllm4rec.evaluation import evaluate
    from cllm4rec.serving import load_run

    loaded = load_run(run, device=device, progress=True)
    loaded.recommender.fit(dataset, split="test")  # refuses a run trained on another dataset
    evaluation = evaluate(loaded.recommender, dataset, "test", progress=True)
    return Row(
        f"CLLM4Rec ({run.name})",
        "cllm4rec",
        evaluation.metrics,
        _train_seconds(run),
        round(evaluation.score_seconds_per_1k_users, 3),
        str(loaded.checkpoint.relative_to(loaded.root)),
    )


def _train_seconds(run: Path) -> float | None:
    """Training time of a run: the sum of its logged epoch times (both stages)."""
    rows = [row for stage in STAGES for row in RunFolder(run).history(stage)]
    return round(sum(float(row.get("seconds", 0.0)) for row in rows), 1) if rows else None


def format_table(rows: list[Row], dataset: Dataset) -> str:
    """A Markdown table: method x metrics, train time, scoring time per 1k users."""
    n_users = rows[0].metrics.get("n_users", "?") if rows else "?"
    lines = [
        f"Test split of {dataset.path} ({dataset.n_users} users, {dataset.n_items} items; "
        f"{n_users} users evaluated), full ranking, history excluded.",
        "",
        "| method | "
        + " | ".join(metric_title(k) for k in COLUMNS)
        + " | train time (s) | scoring (s / 1k users) | details |",
        "|---|" + "---:|" * (len(COLUMNS) + 2) + "---|",
    ]
    for r in rows:
        train = f"{r.train_seconds:.1f}" if r.train_seconds is not None else "n/a"
        cells = " | ".join(f"{r.metrics[k]:.4f}" for k in COLUMNS)
        lines.append(f"| {r.method} | {cells} | {train} | {r.score_seconds_per_1k_users:.3f} | {r.detail} |")
    return "\n".join(lines)


def plot_results(rows: list[Row], path: Path) -> None:
    """Grouped bars: one group per metric, one bar per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(max(7, 1.2 * len(rows) + 4), 4.5))
    width = 0.8 / max(1, len(rows))
    x = np.arange(len(COLUMNS))
    for i, row in enumerate(rows):
        values = [row.metrics[k] for k in COLUMNS]
        bars = ax.bar(x + (i - (len(rows) - 1) / 2) * width, values, width, label=row.method)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    ax.set_xticks(x, [metric_title(k) for k in COLUMNS])
    ax.set_ylabel("test metric")
    ax.set_title("Full-ranking test metrics")
    ax.legend(fontsize=8, loc="upper left", ncols=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
