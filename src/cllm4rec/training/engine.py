"""Shared training pieces as plain functions: set-up, optimizers, one pass over a corpus, validation.

Built on Hugging Face Accelerate from the start: a single process runs unchanged, and the same code runs
under ``accelerate launch`` on several GPUs (the task module below is what gets wrapped for data
parallelism, so every loss goes through ``forward``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from cllm4rec.backbone import load_backbone
from cllm4rec.data import Dataset
from cllm4rec.errors import CLLM4RecError
from cllm4rec.model import CLLM4Rec
from cllm4rec.tokenization import IDTokenizer, collate
from cllm4rec.training.batching import bucket_batches
from cllm4rec.training.config import ModelConfig

STAGE_CODES = {"pretrain": 1, "finetune": 2}


def epoch_rng(seed: int, stage: str, epoch: int, part: int = 0) -> np.random.Generator:
    """The random stream of one epoch: derived from the seed, so a resumed run replays it exactly."""
    return np.random.default_rng([seed, STAGE_CODES[stage], epoch, part])


class TaskModule(torch.nn.Module):
    """Routes each training task through ``forward`` (what DDP needs to synchronise gradients)."""

    def __init__(self, model: CLLM4Rec) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, task: str, batch: Any, lambda_c: float, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (total loss, task loss, regularization) for one batch of one task."""
        m = self.model
        if task == "collab":
            out, trained = m.item_lm_loss(batch, side="collab"), "collab"
        elif task == "content":
            out, trained = m.word_lm_loss(batch, side="content"), "content"
        elif task == "rec":
            out, trained = m.rec_loss(batch, targets, side="collab"), "collab"
        else:  # pragma: no cover - programming error
            raise ValueError(f"unknown task {task}")
        if lambda_c > 0:
            reg = m.mutual_reg(batch.input_ids, trained=trained)
            total = out.loss + lambda_c * reg
        else:
            reg = torch.zeros((), device=out.loss.device)
            total = out.loss
        return total, out.loss.detach(), reg.detach()


@dataclass
class Context:
    """Everything a stage loop needs: the accelerator, model, tokenizer and data."""

    accelerator: Any
    model: CLLM4Rec
    task: TaskModule
    tok: IDTokenizer
    dataset: Dataset
    model_config: ModelConfig
    seed: int
    progress: bool

    @property
    def device(self) -> torch.device:
        return self.accelerator.device


def resolve_device(device: str) -> str:
    """Map ``auto`` to cuda when available; refuse cuda when it is not."""
    if device not in ("auto", "cpu", "cuda"):
        raise CLLM4RecError(f"unknown device {device!r}; use cpu, cuda or auto")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise CLLM4RecError("--device cuda was asked for but no CUDA device is available")
    return device


def build_context(
    dataset: Dataset, model_config: ModelConfig, *, seed: int, device: str = "auto", progress: bool = True
) -> Context:
    """Load the backbone, build the model with freshly initialised ID tables, wrap it for Accelerate."""
    from accelerate import Accelerator

    device = resolve_device(device)
    accelerator = Accelerator(cpu=device == "cpu")
    torch.manual_seed(seed)
    loaded = load_backbone(model_config.backbone, random_init=model_config.random_backbone, seed=seed)
    model = CLLM4Rec(
        loaded,
        dataset.n_users,
        dataset.n_items,
        init_scale=model_config.init_scale,
        seed=seed,
        ref=loaded.ref,
    )
    model.autocast = model_config.bf16
    from cllm4rec.model import build_id_tokenizer

    tok = build_id_tokenizer(loaded, dataset.n_users, dataset.n_items)
    task = accelerator.prepare(TaskModule(model))
    return Context(accelerator, model, task, tok, dataset, model_config, seed, progress)


def make_optimizers(model: CLLM4Rec, lr: float, user_lr_scale: float) -> dict[str, torch.optim.Optimizer]:
    """One Adam per embedding side, so an L-step never moves content tables and vice versa."""
    optimizers = {}
    for side in ("collab", "content"):
        users, items = getattr(model, f"user_{side}"), getattr(model, f"item_{side}")
        groups = [
            {"params": list(users.parameters()), "lr": lr * user_lr_scale},
            {"params": list(items.parameters()), "lr": lr},
        ]
        optimizers[side] = torch.optim.Adam(groups, lr=lr)
    return optimizers


def run_pass(
    ctx: Context,
    task: str,
    docs: list[tuple[list[int], list[int]]],
    *,
    batch_size: int,
    rng: np.random.Generator,
    lambda_c: float,
    optimizer: torch.optim.Optimizer,
    targets: list[np.ndarray] | None = None,
    desc: str = "",
) -> dict[str, float]:
    """One pass over ``docs`` (bucketed by length); returns mean task loss, regularization and steps."""
    if not docs:
        return {"loss": math.nan, "reg": math.nan, "steps": 0, "tokens": 0}
    max_len = ctx.model_config.max_length
    lengths = np.fromiter((min(len(p) + len(m), max_len) for p, m in docs), dtype=np.int64, count=len(docs))
    batches = bucket_batches(lengths, batch_size, rng)
    ctx.task.train()
    sums = {"loss": 0.0, "reg": 0.0}
    weight = 0.0
    bar = tqdm(batches, desc=desc, disable=not ctx.progress, leave=False, dynamic_ncols=True)
    for idx in bar:
        batch = collate([docs[i] for i in idx], ctx.tok.pad_id, max_len).to(ctx.device)
        tgt = None
        if targets is not None:
            tgt = torch.zeros(len(idx), ctx.dataset.n_items, device=ctx.device)
            for row, i in enumerate(idx):
                tgt[row, torch.as_tensor(targets[i], device=ctx.device)] = 1.0
        optimizer.zero_grad(set_to_none=True)
        total, loss, reg = ctx.task(task, batch, lambda_c, tgt)
        if not torch.isfinite(total):
            raise CLLM4RecError(f"{task} loss became {total.item()}; lower the learning rate")
        ctx.accelerator.backward(total)
        optimizer.step()
        sums["loss"] += loss.item() * len(idx)
        sums["reg"] += reg.item() * len(idx)
        weight += len(idx)
        bar.set_postfix(loss=f"{sums['loss'] / weight:.4f}")
    return {
        "loss": sums["loss"] / weight,
        "reg": sums["reg"] / weight,
        "steps": len(batches),
        "tokens": int(lengths.sum()),
    }


def sample_docs(docs: list[Any], fraction: float, rng: np.random.Generator) -> list[Any]:
    """A random ``fraction`` of ``docs`` (all of them at 1.0)."""
    if fraction >= 1.0 or not docs:
        return docs
    n = max(1, int(round(fraction * len(docs))))
    return [docs[i] for i in np.sort(rng.choice(len(docs), size=n, replace=False))]
