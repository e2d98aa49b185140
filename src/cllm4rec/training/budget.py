"""A wall-clock budget for ``cllm4rec train --budget 30m`` (docs/DESIGN.md §8, "Budgets").

The plan: after the model is built, a few real steps of each pass and one batch of validation scoring are
timed (on copies of the tables, which are put back), each pass's epoch is extrapolated from them, and the
preset's epochs of both stages are scaled down by one factor until the whole run, with the test scoring
kept in reserve, fits the time that is left. The plan is printed before the first epoch. The loops then
honour the budget: an epoch ends a stage when the next one, at the pace measured so far, would not fit.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from cllm4rec.core.coerce import parse_duration
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.runs.config import RunConfig

CALIBRATION_STEPS = 4
"""Timed steps per pass (after one untimed warm-up step), at the mid-points of equal shares of the epoch."""
MARGIN = 0.05
"""Share of the budget kept free for what the plan cannot see (checkpoints, logs, the machine's noise)."""


def parse_budget(text: str) -> float:
    """Seconds in a ``--budget`` such as ``90s``, ``30m``, ``1.5h`` (a bare number is seconds); ``none``
    (0.0) turns off a budget the config or preset sets."""
    if str(text).strip().lower() == "none":
        return 0.0
    return parse_duration(text, "--budget")


@dataclass
class Budget:
    """A deadline on ``time.perf_counter``'s clock, less a reserve kept for the test scoring."""

    seconds: float
    started: float
    reserve: float = 0.0
    finetune_seconds: float = 0.0
    """What the plan gave finetuning: pretraining stops early rather than eat into it."""

    def left(self) -> float:
        """Seconds left for training (the reserve already taken off)."""
        return self.started + self.seconds * (1 - MARGIN) - self.reserve - time.perf_counter()

    def fits(self, seconds: float, stage: str = "finetune") -> bool:
        """Whether another epoch of ``seconds`` in ``stage`` still ends in time (for pretraining: leaving
        finetuning its planned share)."""
        later = self.finetune_seconds if stage == "pretrain" else 0.0
        return seconds + later <= self.left()

    def stop_message(self, stage: str, epoch: int) -> str:
        return f"cllm4rec: budget: {stage} ends after epoch {epoch}: the next one would not fit"


@dataclass(frozen=True)
class EpochCosts:
    """Estimated seconds of one epoch of each stage and of one scoring of the validation (or test) users."""

    pretrain: float
    finetune: float
    validation: float


def plan(config: RunConfig, costs: EpochCosts, budget: Budget) -> tuple[RunConfig, str]:
    """The config with the stages' epochs cut to fit ``budget`` (never raised), and the plan in words.

    Pretraining gives up epochs first, down to a third of its preset's, then both stages shrink by one
    factor; each keeps at least one epoch when it has any (a budget too small for that is an error). On a
    sparse real-size catalogue a finetuning epoch gained more validation recall than a pretraining epoch at
    about two thirds of its cost (docs/BENCHMARKS.md, "Real-size catalogues"), hence the order.
    """
    p, f = config.pretrain, config.finetune
    n_pre, n_fine = p.warmup_epochs + p.epochs, (f.epochs if f.enabled else 0)
    fixed = costs.validation if f.enabled else 0.0  # finetuning validates the pretrained model first (epoch 0)
    left = budget.left() - fixed
    pre, fine = n_pre, n_fine
    if pre * costs.pretrain + fine * costs.finetune > left:
        floor_pre = math.ceil(n_pre / 3)
        room = math.floor((left - fine * costs.finetune) / costs.pretrain) if costs.pretrain > 0 else pre
        pre = max(floor_pre, min(pre, room))
        if pre * costs.pretrain + fine * costs.finetune > left:
            need = pre * costs.pretrain + fine * costs.finetune
            scale = max(0.0, left) / need
            pre = max(1, math.floor(pre * scale)) if pre else 0
            fine = max(1, math.floor(fine * scale)) if fine else 0
    warm = min(p.warmup_epochs, round(pre * p.warmup_epochs / n_pre)) if n_pre else 0
    if p.epochs and pre > 0 and pre == warm:
        warm = pre - 1
    alt = pre - warm
    planned = pre * costs.pretrain + fine * costs.finetune + fixed
    if planned > budget.left():
        raise CLLM4RecError(
            f"--budget {budget.seconds:.0f}s is too small: one epoch of each stage and the test need about "
            f"{planned + budget.reserve:.0f}s here, and {budget.left() + budget.reserve:.0f}s are left after "
            f"the set-up"
        )
    budget.finetune_seconds = fine * costs.finetune + fixed
    new = replace(
        config,
        pretrain=replace(p, warmup_epochs=warm, epochs=alt),
        finetune=replace(f, epochs=fine) if f.enabled else f,
    )
    text = (
        f"cllm4rec: budget {_fmt(budget.seconds)}: {_fmt(time.perf_counter() - budget.started)} spent on set-up; "
        f"an epoch takes about {_fmt(costs.pretrain)} in pretraining and {_fmt(costs.finetune)} in finetuning "
        f"(validation included), the test about {_fmt(budget.reserve)}. Plan: {pre} pretraining epochs "
        f"(preset {n_pre}) and {fine} finetuning epochs (preset {n_fine}), about {_fmt(planned)} of training; "
        f"a stage ends early if its next epoch would not fit."
    )
    return new, text


def _fmt(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.1f} min"


def measure_costs(ctx: Any, config: RunConfig) -> EpochCosts:
    """Time a few steps of each pass and one validation batch; extrapolate to epochs.

    The steps run on the real model with a scratch optimizer; the tables are restored afterwards, so the
    run itself is exactly what it would have been without the measurement.
    """
    from cllm4rec.evaluation.harness import batch_users
    from cllm4rec.model.recommender import CLLM4RecRecommender
    from cllm4rec.training.batching import bucket_batches
    from cllm4rec.training.corpora import content_docs, interaction_docs, rec_docs
    from cllm4rec.training.engine import make_optimizers, sample_docs, stage_batch_size, train_step
    from cllm4rec.training.objectives import CONTENT, REC, collab_objective

    model, tok, train, cfg = ctx.model, ctx.tok, ctx.dataset.train, config
    saved = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    optimizers = make_optimizers(model, cfg.pretrain.lr, 1.0)
    rng = np.random.default_rng(0)
    n_docs = int((train.getnnz(axis=1) > 0).sum())

    def pass_seconds(objective: Any, docs: list[Any], batch: int, targets: Any = None) -> float:
        """An epoch's seconds from batches at the mid-points of equal shares of its length-sorted batches
        (the loop's own bucketing), so their mean is the epoch's mean step."""
        if not docs:
            return 0.0
        max_len = ctx.model_config.max_length
        lengths = np.fromiter((min(len(a) + len(b), max_len) for a, b in docs), dtype=np.int64, count=len(docs))
        batches = sorted(bucket_batches(lengths, batch, rng), key=lambda idx: int(lengths[idx].max()))
        picks = np.floor((np.arange(CALIBRATION_STEPS) + 0.5) / CALIBRATION_STEPS * len(batches)).astype(int)
        seconds = []
        for n, k in enumerate([picks[0], *picks]):  # the first is an untimed warm-up
            t0 = time.perf_counter()
            train_step(ctx, objective, docs, batches[k], 0.1, targets, optimizers[objective.side])
            if n:
                seconds.append(time.perf_counter() - t0)
        return len(batches) * float(np.mean(seconds))

    try:
        collab = collab_objective(cfg.pretrain.collab_target)
        l_batch = stage_batch_size(cfg.pretrain.batch_size, cfg.pretrain.max_steps, n_docs)
        l_pass = pass_seconds(collab, interaction_docs(tok, train, rng, True), l_batch)
        c_pass = {"pretrain": 0.0, "finetune": 0.0}
        if ctx.model_config.content:
            content = content_docs(tok, ctx.dataset, ctx.model_config.max_length)
            for stage, stage_cfg in (("pretrain", cfg.pretrain), ("finetune", cfg.finetune)):
                sampled = sample_docs(content, stage_cfg.content_fraction, rng, stage_cfg.content_max_docs)
                c_pass[stage] = pass_seconds(CONTENT, sampled, stage_cfg.batch_size)
        rec = rec_docs(tok, train, rng, cfg.finetune.mask_fraction, cfg.finetune.target, ctx.model_config.max_length)
        r_batch = stage_batch_size(cfg.finetune.batch_size, cfg.finetune.max_steps, len(rec.prompts))
        r_pass = pass_seconds(REC, [(p, []) for p in rec.prompts], r_batch, rec.targets)
    finally:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name in saved:
                    p.copy_(saved[name])
            for p in model.parameters():
                p.grad = None
    recommender = CLLM4RecRecommender(model, tok, style="rec", max_length=ctx.model_config.max_length)
    known = ctx.dataset.known("valid")
    users = np.flatnonzero(np.diff(ctx.dataset.split("valid").indptr) > 0)
    batch = batch_users(ctx.dataset.n_items)
    t0 = time.perf_counter()
    recommender.score(users[:batch], known[users[:batch]])
    validation = (time.perf_counter() - t0) * math.ceil(len(users) / max(1, batch)) * 1.2  # + metric code
    validate = cfg.pretrain.validate
    return EpochCosts(
        pretrain=l_pass + c_pass["pretrain"] + (validation if validate else 0.0),
        finetune=r_pass + c_pass["finetune"] + validation,
        validation=validation,
    )
