"""Stage 1, soft+hard prompted pretraining with mutual regularization (docs/DESIGN.md §2-§3), one loop.

Schedule: ``warmup_epochs`` content-only epochs, then ``epochs`` alternating epochs of an L-pass
(collaborative LM over the item space + mutual regularization toward the frozen content embeddings) and a
C-pass (content LM over the word vocabulary + regularization toward the frozen collaborative embeddings).
A pass regularises only toward a side that has completed a pass already (docs/DESIGN.md §3).
"""

from __future__ import annotations

import time
from typing import Any

from cllm4rec.evaluation import DEFAULT_SELECTION_KEYS
from cllm4rec.runs.checkpoint import copy_checkpoint, save_checkpoint
from cllm4rec.runs.config import PretrainConfig
from cllm4rec.runs.folder import RunFolder
from cllm4rec.training.budget import Budget
from cllm4rec.training.corpora import content_docs, interaction_docs
from cllm4rec.training.engine import Context, epoch_rng, make_optimizers, run_pass, stage_batch_size
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
from cllm4rec.training.objectives import CONTENT, collab_objective

STAGE = "pretrain"


def run_pretrain(
    run: RunFolder, ctx: Context, cfg: PretrainConfig, *, resume: bool = False, budget: Budget | None = None
) -> StageState:
    """Pretrain the ID embeddings; returns the final stage state."""
    model, tok, train = ctx.model, ctx.tok, ctx.dataset.train
    batch = stage_batch_size(cfg.batch_size, cfg.max_steps, int((train.getnnz(axis=1) > 0).sum()))
    # the learning rate stays when the batch grows: on Toys a square-root scaled one gave a worse L-pass
    # (collab loss 9.44 against 9.19 after one epoch from a random start, 8.79 against 8.67 after three
    # from the SVD start; docs/BENCHMARKS.md, "Real-size catalogues")
    optimizers = make_optimizers(model, cfg.lr, cfg.user_lr_scale)
    state = (resume_stage(run, STAGE, ctx, optimizers) if resume else None) or StageState(STAGE, ctx.seed)
    if state.complete:
        return state

    use_content = ctx.model_config.content  # one switch for both stages (docs/DESIGN.md §3)
    content = content_docs(tok, ctx.dataset, ctx.model_config.max_length) if use_content else []
    if use_content and not content and state.epoch == 0:
        ctx.accelerator.print(
            "cllm4rec: this dataset has no text: training the collaborative side only (no content LM)"
        )
    lambda_c = cfg.lambda_c if content else 0.0
    warmup = cfg.warmup_epochs if content else 0
    total = warmup + cfg.epochs
    collab = collab_objective(cfg.collab_target)
    announce(ctx, STAGE, batch)

    for epoch in range(state.epoch + 1, total + 1):
        started = time.perf_counter()
        phase = "warmup" if epoch <= warmup else "alternating"
        row: dict[str, Any] = {"epoch": epoch, "phase": phase, **batch_sizes(ctx, batch)}
        if epoch > warmup:  # L-step: the collaborative LM over this epoch's reshuffled interaction documents
            docs = interaction_docs(tok, train, epoch_rng(ctx.seed, STAGE, epoch, 0), cfg.reorder)
            res = run_pass(
                ctx,
                collab,
                docs,
                batch_size=batch,
                rng=epoch_rng(ctx.seed, STAGE, epoch, 1),
                lambda_c=state.reg_weight(collab.side, lambda_c),
                optimizer=optimizers[collab.side],
                desc=f"pretrain {epoch}/{total} L",
            )
            record_pass(row, state, collab, res)
        if content:  # C-step: the content LM over reviews and item/user texts
            optimizer, desc = optimizers[CONTENT.side], f"pretrain {epoch}/{total} C"
            res = content_pass(ctx, state, epoch, content, cfg, lambda_c=lambda_c, optimizer=optimizer, desc=desc)
            record_pass(row, state, CONTENT, res)
        improved = False
        if cfg.validate and epoch > warmup:
            metrics, score = validation_row(ctx, DEFAULT_SELECTION_KEYS, style="lm")
            row.update(metrics)
            if state.best_metric is None or score > state.best_metric:
                state.best_metric, state.best_epoch, improved = score, epoch, True
        state.complete = epoch == total
        if not state.complete and budget is not None and not budget.fits(time.perf_counter() - started, STAGE):
            state.complete = True  # the next epoch would not fit the budget (training/budget.py)
            ctx.accelerator.print(budget.stop_message(STAGE, epoch))
        close_epoch(run, ctx, optimizers, state, row, started=started, improved=improved)
        if state.complete:
            break

    if total == 0:
        state.complete = True
    if ctx.is_main:
        if total == 0:
            save_checkpoint(run.last(STAGE), model, optimizers, state.to_dict(), ctx.record)
        if state.best_epoch is None:  # no validation in this stage: the best model is the last one
            copy_checkpoint(run.last(STAGE), run.best(STAGE))
    ctx.accelerator.wait_for_everyone()
    return state
