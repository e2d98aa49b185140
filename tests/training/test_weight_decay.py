"""``weight_decay``: decoupled decay of the ID tables after each step, never of the item bias."""

from __future__ import annotations

import pytest
import torch

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.runs.config import load_config
from cllm4rec.training.engine import decay_tables


def _params() -> tuple[torch.nn.Parameter, torch.nn.Parameter, torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(0)
    users = torch.nn.Parameter(torch.randn(5, 4, generator=gen))
    items = torch.nn.Parameter(torch.randn(7, 4, generator=gen))
    bias = torch.nn.Parameter(torch.randn(7, generator=gen))
    return users, items, bias


def _adam_step(weight_decay: float) -> list[torch.Tensor]:
    users, items, bias = _params()
    opt = torch.optim.Adam([{"params": [users], "lr": 1e-2}, {"params": [items, bias], "lr": 1e-3}])
    (users.sum() + (items**2).sum() + bias.sum()).backward()
    opt.step()
    decay_tables(opt.param_groups, weight_decay)
    return [users.detach(), items.detach(), bias.detach()]


def test_tables_shrink_by_lr_times_decay_and_the_bias_does_not() -> None:
    plain = _adam_step(0.0)
    decayed = _adam_step(2.0)
    assert torch.allclose(decayed[0], plain[0] * (1 - 1e-2 * 2.0))  # users: their group's lr
    assert torch.allclose(decayed[1], plain[1] * (1 - 1e-3 * 2.0))  # items
    assert torch.equal(decayed[2], plain[2])  # the bias is never decayed
    # to first order this is AdamW's decoupled decay
    users, items, bias = _params()
    opt = torch.optim.AdamW([{"params": [users], "lr": 1e-2}, {"params": [items, bias], "lr": 1e-3}], weight_decay=2.0)
    (users.sum() + (items**2).sum() + bias.sum()).backward()
    opt.step()
    assert torch.allclose(users.detach(), decayed[0], atol=1e-3)


def test_config_takes_and_checks_weight_decay() -> None:
    cfg = load_config(overrides=["pretrain.weight_decay=0.5", "finetune.weight_decay=1"])
    assert (cfg.pretrain.weight_decay, cfg.finetune.weight_decay) == (0.5, 1.0)
    with pytest.raises(CLLM4RecError, match="weight_decay must be >= 0"):
        load_config(overrides=["finetune.weight_decay=-1"])


def test_optimizers_decay_every_step_before_a_moving_average_reads_the_tables() -> None:
    """make_optimizers owns the decay (a step hook), so an average registered later follows decayed tables."""
    from cllm4rec.training.averaging import EMA_KEY, TableAverage
    from cllm4rec.training.engine import make_optimizers

    class Tables:  # what make_optimizers reads of a model
        def __init__(self) -> None:
            self.params = {side: _params() for side in ("collab", "content")}

        def trainable_parameters(self, side: str) -> list[torch.nn.Parameter]:
            return list(self.params[side])

    tables = Tables()
    optimizers = make_optimizers(tables, 1e-3, 10.0, weight_decay=2.0)  # type: ignore[arg-type]
    average = TableAverage(optimizers["collab"], 0.5)
    users, items, bias = tables.params["collab"]
    (users.sum() + (items**2).sum() + bias.sum()).backward()
    optimizers["collab"].step()
    plain = _adam_step(0.0)  # the same Adam step (user lr 1e-2, item lr 1e-3), without decay
    assert torch.allclose(users.detach(), plain[0] * (1 - 1e-2 * 2.0))
    assert torch.allclose(items.detach(), plain[1] * (1 - 1e-3 * 2.0))
    assert torch.equal(bias.detach(), plain[2])
    for p in (users, items, bias):  # the average starts at the tables as decayed, not before the decay
        assert torch.equal(optimizers["collab"].state[p][EMA_KEY], p.detach())
    assert average.ready
