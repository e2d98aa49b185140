"""RowAdam: plain Adam where every row is touched, lazy row updates where few are (docs/DESIGN.md §2)."""

from __future__ import annotations

import torch
from torch import nn

from cllm4rec.training.optim import RowAdam


def _tables(sparse: bool) -> tuple[nn.Embedding, nn.Parameter]:
    gen = torch.Generator().manual_seed(0)
    table = nn.Embedding.from_pretrained(torch.randn(6, 4, generator=gen), freeze=False, sparse=sparse)
    head = nn.Parameter(torch.randn(5, 4, generator=gen))
    return table, head


def _loss(table: nn.Embedding, head: nn.Parameter, ids: torch.Tensor, k: int) -> torch.Tensor:
    return ((table(ids) @ head.T).sin() * (k + 1)).sum()


def test_sparse_rows_equal_dense_adam_when_every_row_is_touched() -> None:
    sparse, sparse_head = _tables(True)
    dense, dense_head = _tables(False)
    ours = RowAdam([{"params": [sparse.weight], "rows": True}, {"params": [sparse_head]}], lr=1e-2)
    adam = torch.optim.Adam([dense.weight, dense_head], lr=1e-2)
    ids = torch.tensor([[0, 1, 2], [3, 4, 5], [5, 0, 2]])
    for k in range(3):
        for opt, table, head in ((ours, sparse, sparse_head), (adam, dense, dense_head)):
            opt.zero_grad(set_to_none=True)
            _loss(table, head, ids, k).backward()
            opt.step()
    assert sparse.weight.grad.is_sparse
    torch.testing.assert_close(sparse.weight, dense.weight, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(sparse_head, dense_head, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(ours.state[sparse.weight]["exp_avg_sq"], adam.state[dense.weight]["exp_avg_sq"])


def test_untouched_rows_keep_their_values_and_moments() -> None:
    table, head = _tables(True)
    opt = RowAdam([{"params": [table.weight], "rows": True}, {"params": [head]}], lr=1e-2)
    before = table.weight.detach().clone()
    for ids in (torch.tensor([[0, 1]]), torch.tensor([[1, 2]])):
        opt.zero_grad(set_to_none=True)
        _loss(table, head, ids, 0).backward()
        opt.step()
    moved = (table.weight.detach() != before).any(1)
    assert moved.tolist() == [True, True, True, False, False, False]
    state = opt.state[table.weight]
    assert float(state["step"]) == 2.0
    assert bool((state["exp_avg"][3:] == 0).all()) and bool((state["exp_avg"][:3] != 0).any())


def test_a_dense_gradient_in_a_row_group_updates_only_its_nonzero_rows() -> None:
    """Under DDP the gradients arrive dense: the row group still moves only the rows the batch touched."""
    sparse, sparse_head = _tables(True)
    dense, dense_head = _tables(False)
    ours = RowAdam([{"params": [sparse.weight], "rows": True}, {"params": [sparse_head]}], lr=1e-2)
    lazy = RowAdam([{"params": [dense.weight], "rows": True}, {"params": [dense_head]}], lr=1e-2)
    for ids in (torch.tensor([[0, 4]]), torch.tensor([[4, 5, 0]])):
        for opt, table, head in ((ours, sparse, sparse_head), (lazy, dense, dense_head)):
            opt.zero_grad(set_to_none=True)
            _loss(table, head, ids, 1).backward()
            opt.step()
    torch.testing.assert_close(sparse.weight, dense.weight)
    torch.testing.assert_close(sparse_head, dense_head)
