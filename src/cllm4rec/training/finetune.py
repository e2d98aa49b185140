"""Stage 2, recommendation-oriented finetuning (docs/DESIGN.md §4), as one readable loop.

Each epoch masks a random share of every user's train items, predicts them from the remaining history with
the multinomial item head (one forward pass scores all items), regularises the collaborative embeddings
toward the content ones, then runs a content-LM pass regularised toward the recommendation embeddings.
Validation after every epoch (of the tables' moving average with ``finetune.ema``); the best checkpoint by
the selection score is kept; early stopping.
Epoch 0 is the pretrained model itself, so finetuning can only keep or improve the validation score.
"""

from __future__ import annotations

import time
from typing import Any

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.runs.checkpoint import load_tables, read_state
from cllm4rec.runs.config import FinetuneConfig
from cllm4rec.runs.folder import RunFolder
from cllm4rec.training.averaging import TableAverage, averaged
from cllm4rec.training.budget import Budget
from cllm4rec.training.corpora import content_docs, rec_docs
from cllm4rec.training.engine import Context, PassResult, epoch_rng, make_optimizers, run_pass, stage_batch_size
from cllm4rec.training.epoch import (
    StageState,
    announce,
    batch_sizes,
    close_epoch,
    content_pass,
    record_pass,
    resume_stage,
    validation_row,
)
from cllm4rec.training.objectives import CONTENT, REC

STAGE = "finetune"


def rec_pass(
    ctx: Context,
    matrix: Any,
    epoch: int,
    cfg: FinetuneConfig,
    *,
    lambda_c: float,
    optimizer: Any,
    average: TableAverage | None = None,
) -> PassResult:
    """One recommendation pass: mask a fresh random share of each user's items in ``matrix``, predict them."""
    rec = rec_docs(
        ctx.tok,
        matrix,
        epoch_rng(ctx.seed, STAGE, epoch, 0),
        cfg.mask_fraction,
        cfg.target,
        ctx.model_config.max_length,
    )
    return run_pass(
        ctx,
        REC,
        [(prompt, []) for prompt in rec.prompts],
        batch_size=stage_batch_size(cfg.batch_size, cfg.max_steps, len(rec.prompts)),
        rng=epoch_rng(ctx.seed, STAGE, epoch, 1),
        lambda_c=lambda_c,
        optimizer=optimizer,
        targets=rec.targets,
        average=average,
        desc=f"finetune {epoch}/{cfg.epochs} R",
    )


def run_finetune(
    run: RunFolder, ctx: Context, cfg: FinetuneConfig, *, resume: bool = False, budget: Budget | None = None
) -> StageState:
    """Finetune from the pretraining checkpoint; returns the final stage state."""
    pre_state = read_state(run.last("pretrain"))
    if pre_state is None or not pre_state.get("complete"):
        raise CLLM4RecError(
            f"pretraining in {run.root} is not finished; continue it with 'cllm4rec pretrain --out {run.root} --resume'"
        )
    model, tok, train = ctx.model, ctx.tok, ctx.dataset.train
    batch = stage_batch_size(cfg.batch_size, cfg.max_steps, int((train.getnnz(axis=1) > 0).sum()))
    optimizers = make_optimizers(model, cfg.lr, cfg.user_lr_scale, batch / cfg.batch_size)
    state = resume_stage(run, STAGE, ctx, optimizers) if resume else None
    if state is None:  # epoch 0: the pretrained model, validated, is the first "best"
        load_tables(model, run.best("pretrain"))
        started = time.perf_counter()
        metrics, score = validation_row(ctx, cfg.selection, style="rec")
        state = StageState(STAGE, ctx.seed, best_metric=score, best_epoch=0, complete=cfg.epochs == 0)
        state.trained_sides = _pretrained_sides(run)  # what the loaded tables were trained on (docs/DESIGN.md §3)
        row = {"epoch": 0, "phase": "pretrained", **batch_sizes(ctx, batch), **metrics}
        close_epoch(run, ctx, optimizers, state, row, started=started, improved=True)
    if state.complete:
        return state

    use_content = ctx.model_config.content  # one switch for both stages (docs/DESIGN.md §3)
    content = content_docs(tok, ctx.dataset, ctx.model_config.max_length) if use_content else []
    lambda_c = cfg.lambda_c if content else 0.0
    announce(ctx, STAGE, batch)
    average = TableAverage(optimizers[REC.side], cfg.ema) if cfg.ema else None
    for epoch in range(state.epoch + 1, cfg.epochs + 1):
        started = time.perf_counter()
        row: dict[str, Any] = {"epoch": epoch, "phase": "finetune", **batch_sizes(ctx, batch)}
        # R-step: predict a fresh random share of each user's items from the rest of their history
        lam = state.reg_weight(REC.side, lambda_c)
        res = rec_pass(ctx, train, epoch, cfg, lambda_c=lam, optimizer=optimizers[REC.side], average=average)
        record_pass(row, state, REC, res)
        if content:  # C-step, regularised toward the recommendation embeddings
            optimizer, desc = optimizers[CONTENT.side], f"finetune {epoch}/{cfg.epochs} C"
            res = content_pass(ctx, state, epoch, content, cfg, lambda_c=lambda_c, optimizer=optimizer, desc=desc)
            record_pass(row, state, CONTENT, res)

        with averaged(average):
            metrics, score = validation_row(ctx, cfg.selection, style="rec")
        row.update(metrics)
        improved = score > state.best_metric
        if improved:
            state.best_metric, state.best_epoch, state.bad_epochs = score, epoch, 0
        else:
            state.bad_epochs += 1
        state.stopped_early = state.bad_epochs >= cfg.patience and epoch < cfg.epochs
        state.complete = epoch == cfg.epochs or state.stopped_early
        if not state.complete and budget is not None and not budget.fits(time.perf_counter() - started):
            state.complete = True  # the next epoch would not fit the budget (training/budget.py)
            ctx.accelerator.print(budget.stop_message(STAGE, epoch))
        close_epoch(run, ctx, optimizers, state, row, started=started, improved=improved, average=average)
        if state.stopped_early:
            ctx.accelerator.print(
                f"cllm4rec: early stopping after epoch {epoch} (no improvement for {cfg.patience} epochs)"
            )
        if state.complete:
            break
    return state


def _pretrained_sides(run: RunFolder) -> list[str]:
    """The sides the best pretraining checkpoint (what finetuning starts from) had trained."""
    saved = read_state(run.best("pretrain")) or read_state(run.last("pretrain"))
    return StageState.from_dict(saved).trained_sides if saved else []
