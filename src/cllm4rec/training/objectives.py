"""The three training objectives, each an explicit loss call, and the module DDP wraps (docs/DESIGN.md §2-§4).

| objective | loss                                              | trains the side | logged as             |
|-----------|---------------------------------------------------|-----------------|-----------------------|
| COLLAB    | next-item loss over the J items (L-step)          | collaborative   | collab_loss/collab_reg |
| COLLAB_REST | the same, averaged over the shuffled item order | collaborative   | collab_loss/collab_reg |
| CONTENT   | next-word loss over the backbone vocabulary (C-step) | content      | content_loss/content_reg |
| REC       | multinomial loss of the held-out items (finetuning) | collaborative | rec_loss/rec_reg      |

Each adds ``lambda_c`` times the mutual regularization of the side it trains toward the other side (§3).
Every loss goes through :class:`ObjectiveModule.forward`, so the same loop runs unchanged when Accelerate
wraps that module for data parallelism (DDP synchronises gradients only through ``forward``); the weights
it takes make a process's share of a global batch count for its part of the global mean (§10).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from cllm4rec.model import CLLM4Rec, LMLoss
from cllm4rec.tokenization import Batch


def collab_loss(model: CLLM4Rec, batch: Batch, targets: torch.Tensor | None) -> LMLoss:
    """L-step: next-item loss of an interaction document, collaborative tables in the input."""
    return model.item_lm_loss(batch, side="collab")


def collab_rest_loss(model: CLLM4Rec, batch: Batch, targets: torch.Tensor | None) -> LMLoss:
    """L-step with ``pretrain.collab_target=rest``: each position predicts every item from there on (§2)."""
    return model.item_lm_loss(batch, side="collab", target="rest")


def content_loss(model: CLLM4Rec, batch: Batch, targets: torch.Tensor | None) -> LMLoss:
    """C-step: next-word loss of a content document, content tables in the input."""
    return model.word_lm_loss(batch, side="content")


def rec_loss(model: CLLM4Rec, batch: Batch, targets: torch.Tensor | None) -> LMLoss:
    """Finetuning: multinomial likelihood of the held-out items ``targets`` (B, J) from the item head."""
    if targets is None:
        raise ValueError("the recommendation objective needs targets")
    return model.rec_loss(batch, targets, side="collab")


@dataclass(frozen=True)
class Objective:
    """One training objective: its loss, the embedding side it trains, and its logged keys."""

    name: str
    side: str
    loss: Callable[[CLLM4Rec, Batch, torch.Tensor | None], LMLoss]
    per_document: bool = False
    """Whether the loss is a mean over documents (else over target tokens): how a batch's shares weigh."""

    @property
    def loss_key(self) -> str:
        return f"{self.name}_loss"

    @property
    def reg_key(self) -> str:
        return f"{self.name}_reg"


COLLAB = Objective("collab", "collab", collab_loss)
COLLAB_REST = Objective("collab", "collab", collab_rest_loss)
"""The L-step's expected-over-order variant; logged under the same keys as :data:`COLLAB`."""
CONTENT = Objective("content", "content", content_loss)
REC = Objective("rec", "collab", rec_loss, per_document=True)
OBJECTIVES = (COLLAB, CONTENT, REC)
COLLAB_OBJECTIVES = {"next": COLLAB, "rest": COLLAB_REST}
"""The L-step objective for each ``pretrain.collab_target``."""


def collab_objective(target: str) -> Objective:
    """The L-step objective for ``pretrain.collab_target`` (§2)."""
    return COLLAB_OBJECTIVES[target]


LOSS_KEYS = tuple(o.loss_key for o in OBJECTIVES) + tuple(o.reg_key for o in OBJECTIVES)
"""Every loss and regularization key an epoch row of the training log may hold."""


class ObjectiveModule(torch.nn.Module):
    """Computes one objective's loss plus mutual regularization in ``forward`` (what DDP wraps)."""

    def __init__(self, model: CLLM4Rec) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        objective: Objective,
        batch: Batch,
        lambda_c: float,
        targets: torch.Tensor | None = None,
        weights: tuple[float, float] = (1.0, 1.0),
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(total loss to back-propagate, the objective's loss, the regularization), the last two detached
        and unweighted. ``weights`` multiply the loss and the regularization in the total (1 on one process)."""
        out = objective.loss(self.model, batch, targets)
        loss_weight, reg_weight = weights
        if lambda_c > 0:
            reg = self.model.mutual_reg(batch.input_ids, trained=objective.side)
            total = loss_weight * out.loss + (lambda_c * reg_weight) * reg
        else:
            reg = torch.zeros((), device=out.loss.device)
            total = loss_weight * out.loss
        return total, out.loss.detach(), reg.detach()
