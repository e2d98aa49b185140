"""Exponential moving average (Polyak averaging) of the ID tables a finetuning pass trains (docs/DESIGN.md §4).

After every optimizer step (``training/engine.py``'s ``train_step`` calls :meth:`TableAverage.update`) the
average moves toward the tables:
``avg <- decay * avg + (1 - decay) * table`` (``torch.optim.swa_utils.get_ema_multi_avg_fn``). Training keeps
stepping the raw tables; validation and the ``best/`` checkpoint use the average, which smooths out the
step-to-step noise of small batches. The average lives in the optimizer's per-parameter state under
``"ema"``, so ``last/`` checkpoints save it with Adam's moments and a resumed run continues it exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch
from torch.optim.swa_utils import get_ema_multi_avg_fn

__all__ = ["EMA_KEY", "TableAverage", "averaged"]

EMA_KEY = "ema"
"""Key of the average in each parameter's optimizer state."""


class TableAverage:
    """The moving average of every parameter ``optimizer`` steps; :meth:`update` after each of its steps.

    It starts at the tables as they are after the first step (or at the saved average, when the optimizer's
    state was restored from a checkpoint that has one).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the averaging decay must be in (0, 1) (got {decay})")
        self.optimizer, self.decay = optimizer, decay
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self._update = get_ema_multi_avg_fn(decay)

    def update(self) -> None:
        """Move the average toward the parameters (started at them on the first call)."""
        state, old = self.optimizer.state, []
        with torch.no_grad():
            for p in self.params:
                if EMA_KEY in state[p]:
                    old.append(p)
                else:
                    state[p][EMA_KEY] = p.detach().clone()
            if old:
                self._update([state[p][EMA_KEY] for p in old], [p.detach() for p in old], None)

    @property
    def ready(self) -> bool:
        """Whether every parameter has an average yet (false before the first step)."""
        return all(EMA_KEY in self.optimizer.state[p] for p in self.params)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Inside the block the parameters hold the average; the raw values come back afterwards (also on an
        error). Before the first step there is no average and the parameters are left as they are."""
        if not self.ready:
            yield
            return
        raw = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p in self.params:
                p.copy_(self.optimizer.state[p][EMA_KEY])
        try:
            yield
        finally:
            with torch.no_grad():
                for p, value in zip(self.params, raw, strict=True):
                    p.copy_(value)


def averaged(average: TableAverage | None) -> AbstractContextManager[None]:
    """``average.applied()``, or a block that changes nothing when there is no average."""
    return average.applied() if average is not None else nullcontext()
