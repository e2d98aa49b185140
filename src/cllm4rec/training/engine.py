"""Shared training pieces as plain functions: set-up, optimizers, one pass of one objective over a corpus.

Built on Hugging Face Accelerate: a single process runs unchanged, and the same code runs under
``accelerate launch`` on several processes (:class:`~cllm4rec.training.objectives.ObjectiveModule` is what
gets wrapped for data parallelism, so every loss goes through its ``forward``). Each process takes its share
of every global batch (:mod:`cllm4rec.training.sharding`, docs/DESIGN.md §10).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from cllm4rec.backbone import load_backbone
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data import Dataset
from cllm4rec.model import SIDES, CLLM4Rec, resolve_device
from cllm4rec.model.item_init import svd_item_factors
from cllm4rec.model.new_items import init_content_from_text
from cllm4rec.runs.checkpoint import RunRecord
from cllm4rec.runs.config import ModelConfig, RunConfig
from cllm4rec.tokenization import IDTokenizer, collate
from cllm4rec.training.averaging import TableAverage
from cllm4rec.training.batching import bucket_batches
from cllm4rec.training.corpora import Doc, interaction_docs
from cllm4rec.training.objectives import Objective, ObjectiveModule
from cllm4rec.training.optim import RowAdam
from cllm4rec.training.sharding import loss_weights, make_accelerator, shard, sum_over_processes

STAGE_CODES = {"pretrain": 1, "finetune": 2}
CENTER_SAMPLE = 200
"""Interaction documents whose hidden states set the item head's centre (``model.center_head``)."""
TRACE_POINTS = 10
"""About this many smoothed-loss points are logged per pass (the training curves' resolution)."""
TRACE_DECAY = 0.8
"""Exponential smoothing of the per-step loss in those points."""


def epoch_rng(seed: int, stage: str, epoch: int, part: int = 0) -> np.random.Generator:
    """The random stream of one epoch: derived from the seed, so a resumed run replays it exactly."""
    return np.random.default_rng([seed, STAGE_CODES[stage], epoch, part])


@dataclass
class Context:
    """Everything a stage loop needs: the accelerator, model, tokenizer, data and the run record."""

    accelerator: Any
    model: CLLM4Rec
    objectives: ObjectiveModule  # the model behind ``forward``, as Accelerate prepared it
    tok: IDTokenizer
    dataset: Dataset
    record: RunRecord
    seed: int
    progress: bool

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def model_config(self) -> ModelConfig:
        return self.record.config.model

    @property
    def is_main(self) -> bool:
        """Whether this is the process that writes logs, plots and checkpoints."""
        return bool(self.accelerator.is_main_process)


@dataclass(frozen=True)
class PassResult:
    """One pass of one objective: mean loss and regularization per document, optimizer steps, tokens."""

    loss: float
    reg: float
    steps: int
    tokens: int
    trace: list[tuple[float, float]] = field(default_factory=list)
    """(fraction of the pass done, smoothed loss) every few steps, for the training curves."""


def build_context(
    dataset: Dataset,
    config: RunConfig,
    *,
    seed: int,
    device: str = "auto",
    progress: bool = True,
    accelerator: Any = None,
) -> Context:
    """Load the backbone, build the model with freshly initialised ID tables, wrap it for Accelerate.

    ``accelerator``: one made by :func:`~cllm4rec.training.sharding.make_accelerator` (else made here).
    Progress bars show on the main process only.
    """
    model_config = config.model
    if accelerator is None:
        accelerator = make_accelerator(resolve_device(device))
    torch.manual_seed(seed)
    loaded = load_backbone(model_config.backbone, random_init=model_config.random_backbone, seed=seed)
    model = CLLM4Rec(loaded, dataset.n_users, dataset.n_items, model_config, seed=seed, ref=loaded.ref)
    model.init_item_bias(np.asarray(dataset.train.sum(axis=0)).ravel())
    if model_config.item_init == "svd":
        std = model.init_scale * model.word_std
        rows = svd_item_factors(dataset.train, model.hidden_size, std, seed)
        with torch.no_grad():
            model.item_collab.weight.copy_(rows.to(model.device))
    if model_config.content_init == "text":
        init_content_from_text(model, dataset.item_text, dataset.user_text, model_config.max_length)
    model.set_sparse_grads(accelerator.num_processes == 1)  # DDP all-reduces dense gradients only
    tok = loaded.id_tokenizer(dataset.n_users, dataset.n_items)
    if model.head_center is not None:
        model.set_head_center(_center_batches(model, tok, dataset, model_config.max_length, seed))
    objectives = accelerator.prepare(ObjectiveModule(model))
    record = RunRecord.from_dataset(config, dataset)
    progress = progress and accelerator.is_main_process
    return Context(accelerator, model, objectives, tok, dataset, record, seed, progress)


def _center_batches(model: CLLM4Rec, tok: IDTokenizer, dataset: Dataset, max_length: int, seed: int) -> Any:
    """A seeded sample of interaction documents, batched, for :meth:`CLLM4Rec.set_head_center`."""
    docs = interaction_docs(tok, dataset.train, np.random.default_rng([seed, CENTER_SAMPLE]), True)
    rng = np.random.default_rng([seed, CENTER_SAMPLE, 1])
    docs = [docs[i] for i in np.sort(rng.choice(len(docs), size=min(CENTER_SAMPLE, len(docs)), replace=False))]
    return (collate(docs[i : i + 20], tok.pad_id, max_length).to(model.device) for i in range(0, len(docs), 20))


def make_optimizers(
    model: CLLM4Rec, lr: float, user_lr_scale: float, collab_batch_ratio: float = 1.0
) -> dict[str, torch.optim.Optimizer]:
    """One :class:`~cllm4rec.training.optim.RowAdam` per embedding side, so an L-step never moves content
    tables and vice versa; a step updates only the table rows its batch touched (docs/DESIGN.md §2).

    ``collab_batch_ratio``: how much the stage grew the collaborative batch (``stage_batch_size``); that
    side's learning rates grow with its square root (Adam's square-root scaling rule: a step's noise falls
    with the square root of the batch, so an epoch of fewer, larger steps moves the tables about as far).
    """
    optimizers = {}
    for side in SIDES:
        users, items, *bias = model.trainable_parameters(side)  # user table, item table (+ the item bias)
        dense_items = side == "collab"  # the collaborative item table feeds the item head over every item
        side_lr = lr * math.sqrt(collab_batch_ratio) if side == "collab" else lr
        groups = [
            {"params": [users], "lr": side_lr * user_lr_scale, "rows": True},
            {"params": [items, *bias], "lr": side_lr, "rows": not dense_items},
        ]
        optimizers[side] = RowAdam(groups, lr=side_lr)
    return optimizers


def run_pass(
    ctx: Context,
    objective: Objective,
    docs: list[Doc],
    *,
    batch_size: int,
    rng: np.random.Generator,
    lambda_c: float,
    optimizer: torch.optim.Optimizer,
    targets: list[np.ndarray] | None = None,
    average: TableAverage | None = None,
    desc: str = "",
) -> PassResult:
    """One pass of ``objective`` over ``docs`` (bucketed by length, one optimizer step per global batch).

    ``batch_size`` is the global batch: every process draws the same batches and takes its share of each
    (docs/DESIGN.md §10); the logged losses are those of the global batches. ``average``: the moving
    average of the trained tables, updated after every step.
    """
    if not docs:
        return PassResult(math.nan, math.nan, 0, 0)
    max_len = ctx.model_config.max_length
    lengths = np.fromiter((min(len(p) + len(m), max_len) for p, m in docs), dtype=np.int64, count=len(docs))
    batches = bucket_batches(lengths, batch_size, rng)
    ctx.objectives.train()
    losses, regs = [], []  # this process's part of each global batch's loss and regularization
    running = 0.0  # this process's own loss, for the progress bar
    bar = tqdm(batches, desc=desc, disable=not ctx.progress, leave=False, dynamic_ncols=True)
    for done, idx in enumerate(bar, start=1):
        loss, reg, weights = train_step(ctx, objective, docs, idx, lambda_c, targets, optimizer, average)
        losses.append(loss * weights[0])
        regs.append(reg * weights[1])
        running += loss
        bar.set_postfix(loss=f"{running / done:.4f}")
    sums = sum_over_processes(ctx.accelerator, losses + regs)
    losses, regs = sums[: len(batches)], sums[len(batches) :]
    sizes = [len(idx) for idx in batches]
    loss = sum(v * n for v, n in zip(losses, sizes, strict=True)) / len(docs)
    reg = sum(v * n for v, n in zip(regs, sizes, strict=True)) / len(docs)
    return PassResult(loss, reg, len(batches), int(lengths.sum()), _trace(losses))


def train_step(
    ctx: Context,
    objective: Objective,
    docs: list[Doc],
    idx: np.ndarray,
    lambda_c: float,
    targets: list[np.ndarray] | None,
    optimizer: torch.optim.Optimizer,
    average: TableAverage | None = None,
    phases: dict[str, float] | None = None,
) -> tuple[float, float, tuple[float, float]]:
    """One optimizer step on the global batch ``idx`` of ``docs``: forward, loss, backward, step, average.

    ``phases``: when given, the seconds of the forward (with the batch's collation), backward and optimizer
    parts are added to its ``forward``, ``backward`` and ``optimizer`` entries (benchmarks/epoch_phases.py).

    Returns this process's (loss, regularization) of its share and the weights of that share in the global
    mean. A share left empty by a short last batch forwards the batch's first document with weight 0, so
    that every process still takes part in DDP's gradient synchronisation (docs/DESIGN.md §10).
    """
    acc = ctx.accelerator
    clock = [time.perf_counter()]
    mine = shard(idx, acc.process_index, acc.num_processes)
    rows = mine if len(mine) else idx[:1]
    batch = collate([docs[i] for i in rows], ctx.tok.pad_id, ctx.model_config.max_length).to(ctx.device)
    tgt = None
    if targets is not None:
        tgt = torch.zeros(len(rows), ctx.dataset.n_items, device=ctx.device)  # (B, J) multi-hot
        for row, i in enumerate(rows):
            tgt[row, torch.as_tensor(targets[i], device=ctx.device)] = 1.0
    weights = loss_weights(acc, batch, len(mine), len(idx), per_document=objective.per_document)
    # DDP averages gradients over the processes: the factor N makes that average the global batch's gradient
    scaled = (weights[0] * acc.num_processes, weights[1] * acc.num_processes)
    # forward and loss: the objective plus lambda_c times the mutual regularization (objectives.py)
    total, loss, reg = ctx.objectives(objective, batch, lambda_c, tgt, scaled)
    if not torch.isfinite(total):
        raise CLLM4RecError(f"{objective.name} loss became {total.item()}; lower the learning rate")
    clock.append(time.perf_counter())
    optimizer.zero_grad(set_to_none=True)
    acc.backward(total)  # row-sparse gradients for the looked-up tables (optim.py)
    clock.append(time.perf_counter())
    optimizer.step()  # RowAdam: only the rows this batch touched, the whole item table
    if average is not None:
        average.update()  # the moving average follows the stepped tables
    if phases is not None:
        clock.append(time.perf_counter())
        for name, start, stop in zip(("forward", "backward", "optimizer"), clock, clock[1:], strict=False):
            phases[name] = phases.get(name, 0.0) + stop - start
    return loss.item(), reg.item(), weights


def _trace(losses: list[float]) -> list[tuple[float, float]]:
    """(fraction of the pass done, exponentially smoothed loss) about ``TRACE_POINTS`` times per pass."""
    smooth, trace, every = math.nan, [], max(1, len(losses) // TRACE_POINTS)
    for done, value in enumerate(losses, start=1):
        smooth = value if math.isnan(smooth) else TRACE_DECAY * smooth + (1 - TRACE_DECAY) * value
        if done % every == 0 or done == len(losses):
            trace.append((round(done / len(losses), 4), round(smooth, 5)))
    return trace


def stage_batch_size(batch_size: int, max_steps: int, n_docs: int) -> int:
    """Documents per step for a stage: ``batch_size``, grown so an epoch of ``n_docs`` documents takes at most
    ``max_steps`` steps (0: no cap). A step's fixed costs (the dense item-table update, its gradient) then stop
    growing with the users."""
    if max_steps <= 0:
        return batch_size
    return max(batch_size, -(-n_docs // max_steps))


def sample_docs(docs: list[Any], fraction: float, rng: np.random.Generator, max_docs: int = 0) -> list[Any]:
    """A random ``fraction`` of ``docs`` (all of them at 1.0), at most ``max_docs`` of them (0: no cap)."""
    n = max(1, int(round(fraction * len(docs)))) if docs else 0
    if max_docs > 0:
        n = min(n, max_docs)
    if n >= len(docs):
        return docs
    return [docs[i] for i in np.sort(rng.choice(len(docs), size=n, replace=False))]
