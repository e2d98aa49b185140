"""TableAverage (finetune.ema): the update, swapping it in, and its checkpoint round trip.

The training loops with an average are tested in test_loops.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data import Dataset
from cllm4rec.runs.checkpoint import RunRecord, load_optimizers, save_checkpoint
from cllm4rec.runs.config import load_config
from cllm4rec.training.averaging import EMA_KEY, TableAverage


def _sgd(decay: float) -> tuple[list[torch.nn.Parameter], torch.optim.Optimizer, TableAverage]:
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.randn(4))]
    opt = torch.optim.SGD([{"params": params[:1]}, {"params": params[1:]}], lr=0.1)
    return params, opt, TableAverage(opt, decay)


def _step(params: list[torch.nn.Parameter], opt: torch.optim.Optimizer, average: TableAverage) -> None:
    opt.zero_grad()
    sum((p**2).sum() for p in params).backward()
    opt.step()
    average.update()


def test_average_follows_the_formula_from_the_first_step() -> None:
    params, opt, average = _sgd(0.75)
    assert not average.ready
    _step(params, opt, average)
    expected = [p.detach().clone() for p in params]  # starts at the tables after the first step
    for _ in range(3):
        _step(params, opt, average)
        expected = [0.75 * e + 0.25 * p.detach() for e, p in zip(expected, params, strict=True)]
    assert average.ready
    for p, e in zip(params, expected, strict=True):
        assert torch.allclose(opt.state[p][EMA_KEY], e, atol=1e-6)
        assert not torch.allclose(p, e)  # the raw tables moved on; the average lags behind


def test_applied_swaps_the_average_in_and_restores_the_raw_tables_even_on_error() -> None:
    params, opt, average = _sgd(0.5)
    start = [p.detach().clone() for p in params]
    with average.applied():  # no step yet: there is no average, the tables stay as they are
        assert all(torch.equal(p.detach(), s) for p, s in zip(params, start, strict=True))
    for _ in range(3):
        _step(params, opt, average)
    raw = [p.detach().clone() for p in params]
    with pytest.raises(RuntimeError, match="boom"), average.applied():
        for p in params:
            assert torch.equal(p.detach(), opt.state[p][EMA_KEY])
            assert not torch.equal(p.detach(), raw[0] if p.shape == raw[0].shape else raw[1])
        raise RuntimeError("boom")
    assert all(torch.equal(p.detach(), r) for p, r in zip(params, raw, strict=True))


def test_bad_decay_is_an_error() -> None:
    params = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match="decay"):
        TableAverage(torch.optim.SGD(params, lr=0.1), 1.0)
    with pytest.raises(CLLM4RecError, match="finetune.ema"):
        load_config(overrides=["finetune.ema=1.5"])


def test_average_survives_a_checkpoint_round_trip(tmp_path: Path, tiny_data_dir: Path) -> None:
    """The average is saved with the optimizer state and a fresh TableAverage continues it exactly."""
    params, opt, average = _sgd(0.5)
    for _ in range(2):
        _step(params, opt, average)
    model = torch.nn.Module()
    model.save = lambda path: path.mkdir(parents=True)  # the tables are not what this test checks
    record = RunRecord.from_dataset(load_config(), Dataset.load(tiny_data_dir))
    save_checkpoint(tmp_path / "ck", model, {"rec": opt}, {"epoch": 1}, record)

    params2 = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt2 = torch.optim.SGD([{"params": params2[:1]}, {"params": params2[1:]}], lr=0.1)
    load_optimizers({"rec": opt2}, tmp_path / "ck")
    average2 = TableAverage(opt2, 0.5)
    assert average2.ready
    _step(params, opt, average)
    _step(params2, opt2, average2)
    for a, b in zip(params, params2, strict=True):
        assert torch.equal(opt.state[a][EMA_KEY], opt2.state[b][EMA_KEY])
