"""The model's losses (docs/DESIGN.md §2-§4): next-item and next-word LM losses, the multinomial
recommendation loss and the mutual regularization.

Each takes the model (:class:`~cllm4rec.model.CLLM4Rec`, whose methods of the same names call these) and a
batch. Past the model's ``logit_budget`` the item losses are ``logsumexp - (linear part)`` with the
log-sum-exp over item chunks (``model/item_head.py``), exact against the one-matrix path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from cllm4rec.core.defaults import COLLAB_TARGETS
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.model.item_head import item_logsumexp, picked_logits, rest_mean_logits
from cllm4rec.tokenization.batch import Batch


@dataclass
class LMLoss:
    """A loss with its per-document breakdown (padding-invariance tests, logging)."""

    loss: torch.Tensor  # () mean over target tokens (LM losses) or over documents (rec loss)
    per_doc: torch.Tensor  # (B,) each document's loss (LM: mean over its targets; rec: see rec_loss)
    n_targets: torch.Tensor  # (B,) targets per document


class Model(Protocol):
    """What the losses read of the model: its vocabulary layout, forward pieces and heads."""

    n_words: int
    n_users: int
    n_items: int
    logit_budget: int

    def check_ids(self, input_ids: torch.Tensor) -> None: ...
    def tables(self, side: str) -> tuple[nn.Embedding, nn.Embedding]: ...
    def hidden_states(self, batch: Batch, side: str) -> torch.Tensor: ...
    def readout_states(self, batch: Batch, side: str = "collab") -> torch.Tensor: ...
    def head_input(self, h: torch.Tensor, side: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]: ...
    def item_logits(self, h: torch.Tensor, side: str = "collab") -> torch.Tensor: ...
    def word_logits(self, h: torch.Tensor) -> torch.Tensor: ...


def chunked(model: Model, n_rows: int) -> bool:
    """Whether (rows, J) logits would exceed the model's ``logit_budget``, so a loss goes through item chunks."""
    return n_rows * model.n_items > model.logit_budget


def item_lm_loss(model: Model, batch: Batch, side: str = "collab", target: str = "next") -> LMLoss:
    """Item loss over the J items at main-text positions: logits = h_{t-1} . V_side^T (+ bias).

    ``target="next"``: the next item (the LM loss of docs/DESIGN.md §2). ``"rest"``: the mean negative
    log-likelihood of *every* item from that position on: since the item order is shuffled afresh, the
    next item is a uniform draw from those, so this is the expectation of the next-item loss over the
    order (same forward pass, lower-variance gradient; §2).
    """
    if target not in COLLAB_TARGETS:
        raise CLLM4RecError(f"target must be one of {', '.join(COLLAB_TARGETS)} (got {target!r})")
    h_prev, targets, tmask = _targets(model, batch, side)
    items = targets - (model.n_words + model.n_users)  # (N,)
    if items.numel() and bool(((items < 0) | (items >= model.n_items)).any()):
        raise CLLM4RecError("item_lm_loss: every main-text token must be an item token")
    if chunked(model, h_prev.shape[0]):
        hc, weight, bias = model.head_input(h_prev, side)
        lse = item_logsumexp(hc, weight, bias, budget=model.logit_budget)  # (N,)
        if target == "next":
            return lm_loss(lse - picked_logits(hc, weight, bias, items), tmask)
        return lm_loss(lse - rest_mean_logits(hc, weight, bias, items, tmask), tmask)
    logits = model.item_logits(h_prev, side)  # (N, J)
    if target == "next":
        return lm_loss(F.cross_entropy(logits, items, reduction="none"), tmask)
    return lm_loss(rest_nll(F.log_softmax(logits, dim=-1), items, tmask), tmask)


def word_lm_loss(model: Model, batch: Batch, side: str = "content") -> LMLoss:
    """Next-word loss from the backbone's LM head, computed only where a main-text word is predicted."""
    h_prev, targets, tmask = _targets(model, batch, side)
    if targets.numel() and bool((targets >= model.n_words).any()):
        raise CLLM4RecError("word_lm_loss: main-text tokens must be words, not user/item tokens")
    logits = model.word_logits(h_prev)  # (N, vocab of the LM head)
    return lm_loss(F.cross_entropy(logits, targets, reduction="none"), tmask)


def rec_loss(
    model: Model, batch: Batch, targets: torch.Tensor, side: str = "collab", *, reduction: str = "sum"
) -> LMLoss:
    """Multinomial likelihood of held-out items (docs/DESIGN.md §4).

    ``targets``: (B, J) multi-hot (or non-negative weights). Per document the loss is
    ``-sum_j targets_j * log_softmax(scores)_j``: a *sum* over its held-out items (``reduction="sum"``,
    the paper's and Multi-VAE's form) or that sum divided by the number of targets (``"mean"``).
    ``loss`` is the mean of the per-document values over the documents. Past the logit budget it is
    ``sum_j targets_j * logsumexp - targets . scores`` with the log-sum-exp over item chunks.
    """
    if reduction not in ("sum", "mean"):
        raise CLLM4RecError(f"reduction must be 'sum' or 'mean' (got {reduction!r})")
    h = model.readout_states(batch, side)  # (B, d)
    if tuple(targets.shape) != (h.shape[0], model.n_items):
        raise CLLM4RecError(f"targets must have shape {(h.shape[0], model.n_items)} (got {tuple(targets.shape)})")
    weights = targets.to(device=h.device, dtype=torch.float32)  # (B, J)
    n_targets = weights.sum(1)  # (B,)
    if chunked(model, h.shape[0]):
        hc, weight, bias = model.head_input(h, side)
        lse = item_logsumexp(hc, weight, bias, budget=model.logit_budget)  # (B,)
        picked = (hc * (weights @ weight.float())).sum(1)  # (B,) targets . (h . W^T)
        if bias is not None:
            picked = picked + weights @ bias.float()
        per_doc = n_targets * lse - picked
    else:
        per_doc = -(weights * F.log_softmax(model.item_logits(h, side), dim=-1)).sum(1)  # (B,)
    if reduction == "mean":
        per_doc = per_doc / n_targets.clamp(min=1)
    return LMLoss(per_doc.mean(), per_doc, n_targets)


def mutual_reg(model: Model, input_ids: torch.Tensor | Batch, trained: str) -> torch.Tensor:
    """Mutual regularisation (docs/DESIGN.md §3), unweighted: the trainer multiplies it by lambda_c.

    For each document, every *distinct* user/item token in it contributes
    ``0.5 * ||z_trained - stopgrad(z_other)||^2`` (collab vs content row of that user/item); the sum per
    document is averaged over the documents of the batch, so lambda_c does not depend on the batch size.
    Only the ``trained`` side's tables receive gradients.
    """
    if isinstance(input_ids, Batch):
        input_ids = input_ids.input_ids
    ut, vt = model.tables(trained)  # (an unknown side is an error here)
    model.check_ids(input_ids)
    uo, vo = model.tables("content" if trained == "collab" else "collab")
    ids = input_ids.sort(dim=1).values  # (B, T): duplicates become neighbours
    first = torch.ones_like(ids, dtype=torch.bool)
    first[:, 1:] = ids[:, 1:] != ids[:, :-1]
    n_w, n_u = model.n_words, model.n_users
    users = ids[first & (ids >= n_w) & (ids < n_w + n_u)] - n_w  # (Nu,)
    items = ids[first & (ids >= n_w + n_u)] - n_w - n_u  # (Ni,)
    reg = (ut(users) - uo(users).detach()).pow(2).sum() + (vt(items) - vo(items).detach()).pow(2).sum()
    return 0.5 * reg / max(1, ids.shape[0])


def _targets(model: Model, batch: Batch, side: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hidden states at the positions that predict main-text tokens, the tokens, and the target mask."""
    h = model.hidden_states(batch, side)  # (B, T, d)
    tmask = batch.loss_mask[:, 1:]  # (B, T-1): position t predicts token t+1
    h_prev = h[:, :-1][tmask]  # (N, d)
    targets = batch.input_ids[:, 1:][tmask]  # (N,)
    return h_prev, targets, tmask


def lm_loss(nll: torch.Tensor, tmask: torch.Tensor) -> LMLoss:
    """Mean over all target tokens, plus each document's mean; documents without targets give 0."""
    n_targets = tmask.sum(1)  # (B,)
    doc = torch.arange(tmask.shape[0], device=tmask.device).unsqueeze(1).expand_as(tmask)[tmask]  # (N,)
    sums = torch.zeros(tmask.shape[0], device=nll.device, dtype=nll.dtype).index_add(0, doc, nll)
    loss = nll.sum() / n_targets.sum().clamp(min=1)
    return LMLoss(loss, sums / n_targets.clamp(min=1), n_targets)


def rest_nll(logp: torch.Tensor, items: torch.Tensor, tmask: torch.Tensor) -> torch.Tensor:
    """Per target position, ``-mean log p`` over the items at that position and after it in its document.

    ``logp``: (N, J) log-probabilities at the N target positions (row-major over the (B, T-1) mask),
    ``items``: (N,) the item at each target position. Returns (N,).
    """
    n_doc = tmask.sum(1)  # (B,) targets per document
    doc = torch.arange(tmask.shape[0], device=tmask.device).unsqueeze(1).expand_as(tmask)[tmask]  # (N,)
    pos = tmask.long().cumsum(1)[tmask] - 1  # (N,) index of each target within its document
    starts = torch.cumsum(n_doc, 0) - n_doc  # (B,) row of each document's first target
    span = torch.arange(int(n_doc.max()), device=tmask.device)  # (L,)
    rest = (span >= pos.unsqueeze(1)) & (span < n_doc[doc].unsqueeze(1))  # (N, L): that target or a later one
    rows = (starts[doc].unsqueeze(1) + span).clamp(max=items.shape[0] - 1)  # (N, L)
    picked = logp.gather(1, items[rows]) * rest  # (N, L)
    return -picked.sum(1) / rest.sum(1)
