"""Small pieces both stage loops use: validation rows, checkpoint copies, logging and plotting."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from cllm4rec.atomic import atomic_dir
from cllm4rec.serving.scoring import evaluate_model
from cllm4rec.training.checkpoint import save_checkpoint
from cllm4rec.training.engine import Context, epoch_rng, run_pass, sample_docs
from cllm4rec.training.plots import plot_curves
from cllm4rec.training.run_folder import RunFolder


def validation_row(ctx: Context, selection: tuple[str, ...], style: str) -> tuple[dict[str, float], float]:
    """Validation metrics prefixed ``valid_`` and the selection score (sum of the chosen metrics)."""
    from cllm4rec.evaluation.metrics import selection_score

    metrics, _ = evaluate_model(
        ctx.model,
        ctx.tok,
        ctx.dataset,
        "valid",
        max_length=ctx.model_config.max_length,
        style=style,
        device=ctx.device,
        progress=ctx.progress,
    )
    score = selection_score(metrics, selection)
    row = {f"valid_{k}": v for k, v in metrics.items() if k != "n_users"}
    row["valid_score"] = score
    return row, score


def copy_checkpoint(src: Path, dst: Path) -> None:
    """Copy a checkpoint folder atomically (``best/`` from ``last/``)."""
    with atomic_dir(dst, force=True) as tmp:
        shutil.rmtree(tmp)
        shutil.copytree(src, tmp)


def log_epoch(run: RunFolder, stage: str, history: list[dict[str, Any]], row: dict[str, Any]) -> None:
    """Rewrite the stage log, redraw the curves, print a one-line summary of the epoch."""
    run.write_log(stage, history)
    histories = {s: (history if s == stage else run.history(s)) for s in ("pretrain", "finetune")}
    plot_curves(run.root / "training_curves.png", histories)
    parts = [f"{stage} epoch {row['epoch']}"]
    for key in ("collab_loss", "rec_loss", "content_loss", "valid_recall@20", "valid_ndcg@100"):
        value = row.get(key)
        if isinstance(value, float) and math.isfinite(value):
            parts.append(f"{key}={value:.4f}")
    parts.append(f"({row.get('seconds', 0):.0f}s)")
    tqdm.write("  ".join(parts))


def record_pass(row: dict[str, Any], state: dict[str, Any], name: str, result: dict[str, float]) -> None:
    """Put a pass's mean loss and regularization into the epoch row and count its steps."""
    row[f"{name}_loss"], row[f"{name}_reg"] = result["loss"], result["reg"]
    state["step"] += result["steps"]


def content_pass(
    ctx: Context,
    stage: str,
    epoch: int,
    docs: list[tuple[list[int], list[int]]],
    *,
    fraction: float,
    batch_size: int,
    lambda_c: float,
    optimizer: Any,
    desc: str,
) -> dict[str, float]:
    """One C-pass over a fresh random ``fraction`` of the content documents (same in both stages)."""
    sampled = sample_docs(docs, fraction, epoch_rng(ctx.seed, stage, epoch, 2))
    return run_pass(
        ctx,
        "content",
        sampled,
        batch_size=batch_size,
        rng=epoch_rng(ctx.seed, stage, epoch, 3),
        lambda_c=lambda_c,
        optimizer=optimizer,
        desc=desc,
    )


def close_epoch(
    run: RunFolder,
    stage: str,
    ctx: Context,
    optimizers: dict[str, Any],
    state: dict[str, Any],
    row: dict[str, Any],
    *,
    started: float,
    improved: bool,
) -> None:
    """Record the epoch: history, ``last/`` checkpoint (and ``best/`` when improved), log and plot.

    ``state["complete"]`` must already say whether this was the stage's final epoch.
    """
    row["seconds"] = round(time.perf_counter() - started, 2)
    state["epoch"] = row["epoch"]
    state["history"].append(row)
    save_checkpoint(run.last(stage), ctx.model, optimizers, state)
    if improved:
        copy_checkpoint(run.last(stage), run.best(stage))
    log_epoch(run, stage, state["history"], row)
