"""Stage 1, soft+hard prompted pretraining (METHOD §2-§3), as one readable loop.

Schedule: ``warmup_epochs`` content-only epochs, then ``epochs`` alternating epochs of an L-pass
(collaborative LM over the item space + mutual regularization toward the frozen content embeddings) and a
C-pass (content LM over the word vocabulary + regularization toward the frozen collaborative embeddings).
"""

from __future__ import annotations

import time
from typing import Any

from cllm4rec.training.checkpoint import load_optimizers, load_tables, read_state, save_checkpoint
from cllm4rec.training.config import SELECTION_METRICS, PretrainConfig
from cllm4rec.training.corpora import content_docs, interaction_docs
from cllm4rec.training.engine import Context, epoch_rng, make_optimizers, run_pass
from cllm4rec.training.run_folder import RunFolder
from cllm4rec.training.stage_utils import close_epoch, content_pass, copy_checkpoint, record_pass, validation_row

STAGE = "pretrain"


def run_pretrain(run: RunFolder, ctx: Context, cfg: PretrainConfig, *, resume: bool = False) -> dict[str, Any]:
    """Pretrain the ID embeddings; returns the final ``state.json`` content."""
    model, tok, train = ctx.model, ctx.tok, ctx.dataset.train
    optimizers = make_optimizers(model, cfg.lr, cfg.user_lr_scale)
    state: dict[str, Any] = {
        "stage": STAGE,
        "epoch": 0,
        "step": 0,
        "seed": ctx.seed,
        "best_metric": None,
        "best_epoch": None,
        "history": [],
        "complete": False,
    }
    saved = read_state(run.last(STAGE)) if resume else None
    if saved is not None:
        load_tables(model, run.last(STAGE))
        load_optimizers(optimizers, run.last(STAGE))
        state = saved
        if state.get("complete"):
            return state
    content = content_docs(tok, ctx.dataset, ctx.model_config.max_length) if cfg.content else []
    if cfg.content and not content and state["epoch"] == 0:
        print("cllm4rec: this dataset has no text: training the collaborative side only (no content LM)")
    lambda_c = cfg.lambda_c if content else 0.0
    warmup = cfg.warmup_epochs if content else 0
    total = warmup + cfg.epochs
    for epoch in range(state["epoch"] + 1, total + 1):
        started = time.perf_counter()
        row: dict[str, Any] = {"epoch": epoch, "phase": "warmup" if epoch <= warmup else "alternating"}
        if epoch > warmup:
            docs = interaction_docs(tok, train, epoch_rng(ctx.seed, STAGE, epoch, 0), cfg.reorder)
            res = run_pass(
                ctx,
                "collab",
                docs,
                batch_size=cfg.batch_size,
                rng=epoch_rng(ctx.seed, STAGE, epoch, 1),
                lambda_c=lambda_c,
                optimizer=optimizers["collab"],
                desc=f"pretrain {epoch}/{total} L",
            )
            record_pass(row, state, "collab", res)
        if content:
            res = content_pass(
                ctx,
                STAGE,
                epoch,
                content,
                fraction=cfg.content_fraction,
                batch_size=cfg.batch_size,
                lambda_c=lambda_c,
                optimizer=optimizers["content"],
                desc=f"pretrain {epoch}/{total} C",
            )
            record_pass(row, state, "content", res)
        improved = False
        if cfg.validate and epoch > warmup:
            metrics, score = validation_row(ctx, SELECTION_METRICS, style="lm")
            row.update(metrics)
            if state["best_metric"] is None or score > state["best_metric"]:
                state["best_metric"], state["best_epoch"], improved = score, epoch, True
        state["complete"] = epoch == total
        close_epoch(run, STAGE, ctx, optimizers, state, row, started=started, improved=improved)
    if total == 0:
        state["complete"] = True
        save_checkpoint(run.last(STAGE), model, optimizers, state)
    if state["best_epoch"] is None:  # no validation in this stage: the best model is the last one
        copy_checkpoint(run.last(STAGE), run.best(STAGE))
    return state
