"""How a pass and a validation are split across Accelerate's processes (docs/DESIGN.md §10).

Every process draws the same global batches from the seed and takes its share of each one; the loss of a
share is weighted so that DDP's averaged gradient equals the gradient of the whole global batch. Validation
scores a share of each batch of users on every process and gathers the rows. One process changes nothing:
every weight is exactly 1 and nothing is communicated.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from cllm4rec.tokenization import Batch


def make_accelerator(device: str) -> Any:
    """The run's Accelerator: CPU when asked, DDP for the module that owns the ID tables.

    ``find_unused_parameters``: an L-step leaves the content tables without gradient and a C-step the
    collaborative ones, which plain DDP would wait for. Accelerate's own mixed precision stays off whatever
    the launcher says: bf16 is the model's switch (``model.bf16``), which keeps the item heads in fp32
    (docs/DESIGN.md §2), where an outer autocast would run them in bf16.
    """
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    return Accelerator(cpu=device == "cpu", mixed_precision="no", kwargs_handlers=[ddp])


def shard(idx: np.ndarray, rank: int, world: int) -> np.ndarray:
    """This process's documents of one global batch: every ``world``-th one from ``rank`` (may be empty)."""
    return idx[rank::world]


def process_batch_size(batch_size: int, world: int) -> int:
    """The largest share of a global batch of ``batch_size`` documents that one of ``world`` processes gets."""
    return -(-batch_size // world)


def loss_weights(
    accelerator: Any, batch: Batch, n_local: int, n_global: int, *, per_document: bool
) -> tuple[float, float]:
    """This share's fractions of the global batch's loss and regularization denominators.

    The LM losses are means over target tokens and the recommendation loss and the regularization are means
    over documents (docs/DESIGN.md §3-§4). A share's mean times (its count / the global count) is its part
    of the global mean, so the parts sum to the one-process loss. Only the target count needs a collective.
    """
    if accelerator.num_processes == 1:
        return 1.0, 1.0
    docs = n_local / n_global
    if per_document:
        return docs, docs
    targets = torch.tensor(float(batch.loss_mask[:, 1:].sum()) if n_local else 0.0, device=accelerator.device)
    total = float(accelerator.reduce(targets, reduction="sum"))
    return (float(targets) / total if total else 0.0), docs


def sum_over_processes(accelerator: Any, values: list[float]) -> list[float]:
    """Element-wise sum of ``values`` over the processes (one collective; the values as they are on one)."""
    if accelerator.num_processes == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=accelerator.device)
    return accelerator.reduce(tensor, reduction="sum").cpu().tolist()


class ShardedScorer:
    """A recommender whose ``score`` splits each batch of users across the processes and gathers the rows.

    Every process passes the same users (the evaluation harness iterates them in a fixed order), scores its
    contiguous share and receives all rows, so each process computes the metrics of the whole split.
    """

    def __init__(self, inner: Any, accelerator: Any) -> None:
        self.inner = inner
        self.accelerator = accelerator
        self.name = inner.name

    def fit(self, dataset: Any, *, split: str = "valid", progress: bool = False) -> ShardedScorer:
        self.inner.fit(dataset, split=split, progress=progress)
        return self

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """(B, J) scores of ``users``, the same on every process, each row computed by one of them."""
        acc = self.accelerator
        users = np.asarray(users)
        parts = np.array_split(np.arange(len(users)), acc.num_processes)
        mine = parts[acc.process_index]
        n_items = history.shape[1]
        width = max(len(p) for p in parts)
        local = torch.zeros(width, n_items, dtype=torch.float32)  # (max share, J), padded for the gather
        if len(mine):
            local[: len(mine)] = torch.from_numpy(np.asarray(self.inner.score(users[mine], history[mine])))
        gathered = acc.gather(local.to(acc.device)).cpu().numpy()  # (processes * max share, J)
        rows = [gathered[p * width : p * width + len(part)] for p, part in enumerate(parts)]
        return np.concatenate(rows, axis=0)


def scorer(recommender: Any, accelerator: Any) -> Any:
    """``recommender`` itself on one process, else wrapped to split its scoring across the processes."""
    return recommender if accelerator.num_processes == 1 else ShardedScorer(recommender, accelerator)
