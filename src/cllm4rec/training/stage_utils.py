"""Small pieces both stage loops use: validation rows, checkpoint copies, logging and plotting."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from cllm4rec.atomic import atomic_dir
from cllm4rec.serving.scoring import evaluate_model
from cllm4rec.training.engine import Context
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
