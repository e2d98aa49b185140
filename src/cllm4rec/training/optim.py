"""Adam with row-sparse updates of the ID tables (docs/DESIGN.md §2, "Row-sparse steps").

A batch of interaction documents names a few dozen users out of tens of thousands. With dense gradients
every step allocates, zeroes and frees whole-table gradients and runs Adam over every row: a cost per step
that grows with the catalogue, so an epoch's cost grows with users times users. Tables whose rows are only
ever *looked up* (the user tables, the content item table) therefore take sparse gradients
(``nn.Embedding(sparse=True)``), and :class:`RowAdam` updates only the rows a batch touched, the way
:class:`torch.optim.SparseAdam` does ("lazy" Adam: a row's moments move only when it has a gradient; the
bias correction counts the optimizer's steps). The item table of the collaborative side feeds the item head
over the whole catalogue, so its gradient is dense and it takes plain Adam's update in the same optimizer.
A parameter group with ``rows=True`` is updated row by row: from a sparse gradient its named rows, from a
dense one (under DDP, which all-reduces dense gradients) its rows with a non-zero gradient, so one process
and several train alike.

On a step where every row is touched the two updates are the same (``tests/training/test_optim.py``).
State keys are Adam's (``step``, ``exp_avg``, ``exp_avg_sq``), so checkpoints store and resume it as they
store Adam.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["RowAdam"]


class RowAdam(torch.optim.Optimizer):
    """Adam for parameters with dense gradients, lazy row-wise Adam for those with sparse ones."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        if lr <= 0:
            raise ValueError(f"RowAdam: lr must be > 0 (got {lr})")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "rows": False})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t = float(state["step"])
                step_size = group["lr"] / (1 - beta1**t)
                bias2_sqrt = (1 - beta2**t) ** 0.5
                m, v = state["exp_avg"], state["exp_avg_sq"]
                if p.grad.is_sparse or group["rows"]:
                    rows, g = _touched_rows(p.grad)
                    _row_update(p, rows, g, m, v, beta1, beta2, step_size, bias2_sqrt, group["eps"])
                else:
                    grad = p.grad
                    m.lerp_(grad, 1 - beta1)
                    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                    denom = (v.sqrt() / bias2_sqrt).add_(group["eps"])
                    p.addcdiv_(m, denom, value=-step_size)
        return loss


def _touched_rows(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(row indices, their gradient rows) of a sparse gradient, or the non-zero rows of a dense one."""
    if grad.is_sparse:
        grad = grad.coalesce()
        return grad.indices()[0], grad.values()
    rows = torch.nonzero(grad.reshape(grad.shape[0], -1).ne(0).any(1)).squeeze(1)
    return rows, grad[rows]


def _row_update(
    p: torch.Tensor,
    rows: torch.Tensor,
    g: torch.Tensor,
    m: torch.Tensor,
    v: torch.Tensor,
    beta1: float,
    beta2: float,
    step_size: float,
    bias2_sqrt: float,
    eps: float,
) -> None:
    """Adam's update of ``rows`` (R,) with their gradients ``g`` (R, d); other rows keep param and moments."""
    m_rows = m[rows].lerp_(g, 1 - beta1)
    v_rows = v[rows].mul_(beta2).addcmul_(g, g, value=1 - beta2)
    m[rows], v[rows] = m_rows, v_rows
    denom = (v_rows.sqrt() / bias2_sqrt).add_(eps)
    p.index_add_(0, rows, m_rows / denom, alpha=-step_size)
