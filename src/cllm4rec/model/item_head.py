"""The item head in item chunks: log-sum-exp, losses and top-K without a (rows, J) matrix (docs/DESIGN.md §2).

The head is ``z = h . W^T + b`` (``h`` already centred by the caller, ``b`` optional). Every item loss of the
model is ``logsumexp(z) - (a linear function of z)``: the next item's logit, the mean logit over the rest of
the set, or a weighted sum of held-out logits. The linear part is cheap without the full matrix (a gather or
``targets @ W``), so only the log-sum-exp needs all J items. :func:`item_logsumexp` computes it over item
chunks and recomputes each chunk's softmax in the backward pass, so peak memory is one (rows, chunk) block
instead of the (rows, J) logits plus their gradient. :func:`item_topk` ranks the catalogue the same way.

A plain PyTorch path rather than a fused kernel: the fused linear + cross-entropy libraries target GPUs
(Triton), the project runs on CPUs too, and the rest-of-set and multinomial targets are not plain
cross-entropy; the chunked path keeps them exact.
"""

from __future__ import annotations

from typing import Any

import torch

LOGIT_BUDGET = 1 << 24
"""Logits held at once by the chunked head (16 Mi fp32 values, 64 MiB) per block."""


def chunk_items(n_rows: int, n_items: int, budget: int = LOGIT_BUDGET) -> int:
    """Items per chunk so that a (rows, chunk) block stays under ``budget`` values (at least one item)."""
    return max(1, min(n_items, budget // max(1, n_rows)))


def _block(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, start: int, stop: int) -> torch.Tensor:
    """Logits of items ``start:stop`` for every row of ``h``. (N, stop - start) fp32"""
    z = h @ weight[start:stop].float().T
    return z if bias is None else z + bias[start:stop].float()


class _ChunkedLogSumExp(torch.autograd.Function):
    """``logsumexp(h . W^T + b)`` over item chunks; the backward pass recomputes each chunk's softmax."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, chunk: int
    ) -> torch.Tensor:
        parts = [
            torch.logsumexp(_block(h, weight, bias, s, s + chunk), dim=1) for s in range(0, weight.shape[0], chunk)
        ]
        lse = torch.logsumexp(torch.stack(parts, dim=1), dim=1)  # (N,)
        ctx.save_for_backward(h, weight, bias, lse)
        ctx.chunk = chunk
        return lse

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        h, weight, bias, lse = ctx.saved_tensors
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        grad_h = torch.zeros_like(h) if need_h else None
        grad_w = torch.zeros_like(weight) if need_w else None
        grad_b = torch.zeros_like(bias) if need_b and bias is not None else None
        for s in range(0, weight.shape[0], ctx.chunk):
            stop = min(s + ctx.chunk, weight.shape[0])
            p = torch.exp(_block(h, weight, bias, s, stop) - lse[:, None]) * grad[:, None]  # (N, C) d lse / d z
            if grad_h is not None:
                grad_h += p @ weight[s:stop].float()
            if grad_w is not None:
                grad_w[s:stop] = (p.T @ h).to(weight.dtype)
            if grad_b is not None:
                grad_b[s:stop] = p.sum(0).to(bias.dtype)
        return grad_h, grad_w, grad_b, None


def item_logsumexp(
    h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *, budget: int = LOGIT_BUDGET
) -> torch.Tensor:
    """``logsumexp_j (h . W_j + b_j)`` per row of ``h`` (N, d), fp32, in chunks of items. (N,)"""
    h = h.float()
    chunk = chunk_items(h.shape[0], weight.shape[0], budget)
    return _ChunkedLogSumExp.apply(h, weight, bias, chunk)


def picked_logits(
    h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, items: torch.Tensor
) -> torch.Tensor:
    """Logits of one given item per row: ``h_n . W_{items_n} + b_{items_n}``. (N,)"""
    z = (h.float() * weight[items].float()).sum(-1)
    return z if bias is None else z + bias[items].float()


def rest_mean_logits(
    h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, items: torch.Tensor, tmask: torch.Tensor
) -> torch.Tensor:
    """Per target position, the mean logit of the items at that position and after it in its document.

    ``h``: (N, d) at the N target positions, row-major over the (B, T-1) target mask ``tmask``; ``items``:
    (N,) the item at each position. Documents are padded to their longest target run L, so the work is one
    (B, L, L) batched product instead of (N, J). Returns (N,).
    """
    n_doc = tmask.sum(1)  # (B,)
    starts = torch.cumsum(n_doc, 0) - n_doc  # (B,) row of each document's first target
    span = torch.arange(int(n_doc.max()) if n_doc.numel() else 0, device=h.device)  # (L,)
    valid = span[None, :] < n_doc[:, None]  # (B, L)
    rows = (starts[:, None] + span[None, :]).clamp(max=max(0, items.shape[0] - 1))  # (B, L)
    hp = h.float()[rows] * valid[..., None]  # (B, L, d)
    z = hp @ weight[items[rows]].float().transpose(1, 2)  # (B, L, L): position l scores the item at l'
    if bias is not None:
        z = z + bias[items[rows]].float()[:, None, :]
    rest = (span[None, :, None] <= span[None, None, :]) & valid[:, None, :]  # (B, L, L): l' at or after l
    mean = (z * rest).sum(-1) / rest.sum(-1).clamp(min=1)  # (B, L)
    return mean[valid]  # (N,) row-major, like the target mask


@torch.no_grad()
def item_topk(
    h: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    k: int,
    exclude: list[torch.Tensor] | None = None,
    *,
    budget: int = LOGIT_BUDGET,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best items per row of ``h`` (B, d) and their scores, best first, over item chunks.

    Exact against ranking the full (B, J) logits: items in ``exclude[b]`` (item indices) and NaN scores rank
    like -inf, and ties go to the lower item index. A chunk's top-k is resolved under that total order
    (descending score, then ascending index) and merged with the running top-k; the top-k of a union is the
    top-k of the union of the parts' top-k. Returns ((B, k) int64 items, (B, k) fp32 scores); ``k`` is
    clipped to J.
    """
    n_rows, n_items = h.shape[0], weight.shape[0]
    k = min(k, n_items)
    h = h.float()
    chunk = max(k, chunk_items(n_rows, n_items, budget))
    best_items = torch.zeros(n_rows, 0, dtype=torch.long, device=h.device)
    best_scores = torch.zeros(n_rows, 0, dtype=torch.float32, device=h.device)
    for s in range(0, n_items, chunk):
        z = _block(h, weight, bias, s, s + chunk)  # (B, C)
        z = torch.nan_to_num(z, nan=-torch.inf)
        if exclude is not None:
            for b, items in enumerate(exclude):
                local = items[(items >= s) & (items < s + z.shape[1])] - s
                z[b, local] = -torch.inf
        idx = _ordered_topk(z, min(k, z.shape[1])) + s  # (B, k') in the total order
        scores = torch.cat([best_scores, torch.gather(z, 1, idx - s)], dim=1)
        items = torch.cat([best_items, idx], dim=1)  # earlier chunks first: ascending index among equals
        order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
        best_items, best_scores = torch.gather(items, 1, order), torch.gather(scores, 1, order)
    return best_items, best_scores


def _ordered_topk(z: torch.Tensor, k: int) -> torch.Tensor:
    """Column indices of the top ``k`` of each row of ``z`` (no NaN) by descending value, then ascending
    index: torch.topk's choice among ties at the boundary is replaced by the lowest indices. (B, k)"""
    kth = torch.topk(z, k, dim=1, sorted=False).values.min(dim=1).values  # (B,)
    above = z > kth[:, None]
    need = k - above.sum(1)  # slots left for items equal to the k-th score
    equal = z == kth[:, None]
    take = above | (equal & (torch.cumsum(equal.int(), dim=1) <= need[:, None]))  # exactly k per row
    idx = torch.nonzero(take)[:, 1].reshape(z.shape[0], k)  # ascending index within each row
    order = torch.sort(torch.gather(z, 1, idx), dim=1, descending=True, stable=True).indices
    return torch.gather(idx, 1, order)
