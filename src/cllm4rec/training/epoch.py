"""A training stage besides its passes: its typed state (``state.json``) and the one resume function both
stages use, and what every epoch does at its end: validation, bookkeeping, checkpoint, log, plot.

Under several processes, validation is split across them and gathered, and only the main process writes;
the others wait for it at the end of every epoch (docs/DESIGN.md §10).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.evaluation import evaluate, selection_score
from cllm4rec.model.recommender import CLLM4RecRecommender
from cllm4rec.runs.checkpoint import load_optimizers, load_tables, read_state, save_checkpoint
from cllm4rec.runs.config import FinetuneConfig, PretrainConfig
from cllm4rec.runs.folder import STAGES, RunFolder
from cllm4rec.training.averaging import TableAverage
from cllm4rec.training.corpora import Doc
from cllm4rec.training.engine import Context, PassResult, epoch_rng, run_pass, sample_docs
from cllm4rec.training.log_keys import (
    BATCH_SIZE,
    PROCESS_BATCH_SIZE,
    PROCESSES,
    SUMMARY_KEYS,
    TRACE_KEY,
    VALID_SCORE,
    valid_key,
)
from cllm4rec.training.objectives import CONTENT, OBJECTIVES, Objective
from cllm4rec.training.plots import plot_curves
from cllm4rec.training.sharding import process_batch_size, scorer


@dataclass
class StageState:
    """Where a stage stands: what ``state.json`` holds and what a resumed run continues from."""

    stage: str
    """``pretrain`` or ``finetune``."""
    seed: int
    """The run's seed (every epoch's random stream derives from it)."""
    epoch: int = 0
    """Last completed epoch (0: none yet, or finetuning's epoch-0 evaluation of the pretrained model)."""
    step: int = 0
    """Optimizer steps taken in this stage."""
    best_metric: float | None = None
    """Best validation selection score so far (None: no validation yet)."""
    best_epoch: int | None = None
    """Epoch of ``best_metric`` (what ``best/`` holds)."""
    bad_epochs: int = 0
    """Epochs since the last improvement (early stopping)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """One log row per completed epoch (losses, validation metrics, seconds)."""
    complete: bool = False
    """Whether the stage has finished (its last epoch done, or stopped early)."""
    stopped_early: bool = False
    """Whether finetuning stopped for lack of improvement."""
    trained_sides: list[str] = field(default_factory=list)
    """Embedding sides (``collab``, ``content``) that have completed at least one pass, in this stage or the
    pretraining it starts from: mutual regularization pulls only toward these (docs/DESIGN.md §3)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageState:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise CLLM4RecError(f"state.json has unknown field(s): {', '.join(sorted(unknown))}")
        state = cls(**data)
        if "trained_sides" not in data:  # written before the field existed: the logged passes say it
            for objective in OBJECTIVES:
                if any(math.isfinite(row.get(objective.loss_key, math.nan)) for row in state.history):
                    state.mark_trained(objective.side)
        return state

    def mark_trained(self, side: str) -> None:
        """Record that ``side`` has completed a pass (the list stays sorted, so it compares as a set)."""
        self.trained_sides = sorted({*self.trained_sides, side})

    def reg_weight(self, side: str, lambda_c: float) -> float:
        """``lambda_c`` for a pass training ``side`` when the other side has been trained, else 0: pulling
        toward randomly initialised tables would only drag ``side`` toward noise (docs/DESIGN.md §3)."""
        other = "content" if side == "collab" else "collab"
        return lambda_c if other in self.trained_sides else 0.0


def resume_stage(
    run: RunFolder, stage: str, ctx: Context, optimizers: dict[str, torch.optim.Optimizer]
) -> StageState | None:
    """Restore the ID tables, optimizers and state of ``<stage>/last`` when it exists; None when it does not."""
    saved = read_state(run.last(stage))
    if saved is None:
        return None
    load_tables(ctx.model, run.last(stage))
    load_optimizers(optimizers, run.last(stage))
    return StageState.from_dict(saved)


def validation_row(ctx: Context, selection: tuple[str, ...], style: str) -> tuple[dict[str, float], float]:
    """Validation metrics prefixed ``valid_`` and the selection score (sum of the chosen metrics)."""
    recommender = CLLM4RecRecommender(
        ctx.model, ctx.tok, style=style, max_length=ctx.model_config.max_length, progress=ctx.progress
    )
    metrics = evaluate(scorer(recommender, ctx.accelerator), ctx.dataset, "valid", progress=ctx.progress).metrics
    score = selection_score(metrics, selection)
    row = {valid_key(k): v for k, v in metrics.items() if k != "n_users"}
    row[VALID_SCORE] = score
    return row, score


def batch_sizes(ctx: Context, batch_size: int) -> dict[str, int]:
    """The log row's record of how a global batch of ``batch_size`` documents is split over the processes."""
    world = ctx.accelerator.num_processes
    return {PROCESSES: world, BATCH_SIZE: batch_size, PROCESS_BATCH_SIZE: process_batch_size(batch_size, world)}


def announce(ctx: Context, stage: str, batch_size: int) -> None:
    """Say on the console how the stage's batches are split, when there are several processes."""
    sizes = batch_sizes(ctx, batch_size)
    if sizes[PROCESSES] > 1:
        ctx.accelerator.print(
            f"cllm4rec: {stage} on {sizes[PROCESSES]} processes: global batch {sizes[BATCH_SIZE]} "
            f"({sizes[PROCESS_BATCH_SIZE]} per process)"
        )


def record_pass(row: dict[str, Any], state: StageState, objective: Objective, result: PassResult) -> None:
    """Put a pass's mean loss and regularization into the epoch row, count its steps, mark its side trained."""
    row[objective.loss_key], row[objective.reg_key] = result.loss, result.reg
    if result.trace:
        row.setdefault(TRACE_KEY, {})[objective.loss_key] = [list(point) for point in result.trace]
    state.step += result.steps
    if result.steps:
        state.mark_trained(objective.side)


def content_pass(
    ctx: Context,
    state: StageState,
    epoch: int,
    docs: list[Doc],
    cfg: PretrainConfig | FinetuneConfig,
    *,
    lambda_c: float,
    optimizer: torch.optim.Optimizer,
    desc: str,
) -> PassResult:
    """One C-pass over a fresh random ``cfg.content_fraction`` of the content documents (both stages),
    regularised only once the collaborative side has been trained (docs/DESIGN.md §3)."""
    sampled = sample_docs(docs, cfg.content_fraction, epoch_rng(ctx.seed, state.stage, epoch, 2), cfg.content_max_docs)
    return run_pass(
        ctx,
        CONTENT,
        sampled,
        batch_size=cfg.batch_size,
        rng=epoch_rng(ctx.seed, state.stage, epoch, 3),
        lambda_c=state.reg_weight(CONTENT.side, lambda_c),
        optimizer=optimizer,
        desc=desc,
    )


def close_epoch(
    run: RunFolder,
    ctx: Context,
    optimizers: dict[str, torch.optim.Optimizer],
    state: StageState,
    row: dict[str, Any],
    *,
    started: float,
    improved: bool,
    average: TableAverage | None = None,
) -> None:
    """Record the epoch: history, ``last/`` checkpoint (and ``best/`` when improved), log and plot.

    With an ``average`` (``finetune.ema``), ``last/`` keeps the raw tables (the average is in its optimizer
    state, for resuming) and ``best/`` the averaged ones, which are what was validated.

    ``state.complete`` must already say whether this was the stage's final epoch. Every process keeps the
    state; the main process writes, and the others wait until it has.
    """
    row["seconds"] = round(time.perf_counter() - started, 2)
    state.epoch = row["epoch"]
    state.history.append(row)
    if ctx.is_main:  # best/ before last/: a kill between them leaves last/ at the epoch before, which a resume
        # redoes and so writes best/ again; last/ never names a best epoch that best/ does not hold
        if improved and average is not None and average.ready:  # best/ holds the averaged tables
            with average.applied():
                save_checkpoint(run.best(state.stage), ctx.model, optimizers, state.to_dict(), ctx.record)
        elif improved:
            save_checkpoint(run.best(state.stage), ctx.model, optimizers, state.to_dict(), ctx.record)
        save_checkpoint(run.last(state.stage), ctx.model, optimizers, state.to_dict(), ctx.record)
        log_epoch(run, state.stage, state.history, row)
    ctx.accelerator.wait_for_everyone()


def log_epoch(run: RunFolder, stage: str, history: list[dict[str, Any]], row: dict[str, Any]) -> None:
    """Rewrite the stage log, redraw the curves, print a one-line summary of the epoch."""
    run.write_log(stage, history)
    histories = {s: (history if s == stage else run.history(s)) for s in STAGES}
    plot_curves(run.root / "training_curves.png", histories)
    parts = [f"{stage} epoch {row['epoch']}"]
    for key in SUMMARY_KEYS:
        value = row.get(key)
        if isinstance(value, float) and math.isfinite(value):
            parts.append(f"{key}={value:.4f}")
    parts.append(f"({row.get('seconds', 0):.0f}s)")
    tqdm.write("  ".join(parts))
