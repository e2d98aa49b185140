"""The typed state of a training stage (saved as ``state.json``) and the one resume function both stages use."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.runs.checkpoint import load_optimizers, load_tables, read_state
from cllm4rec.runs.folder import RunFolder
from cllm4rec.training.engine import Context
from cllm4rec.training.objectives import OBJECTIVES


@dataclass
class StageState:
    """Where a stage stands: what ``state.json`` holds and what a resumed run continues from."""

    stage: str
    """``pretrain`` or ``finetune``."""
    seed: int
    """The run's seed (every epoch's random stream derives from it)."""
    epoch: int = 0
    """Last completed epoch (0: none yet, or finetuning's epoch-0 evaluation of the pretrained model)."""
    step: int = 0
    """Optimizer steps taken in this stage."""
    best_metric: float | None = None
    """Best validation selection score so far (None: no validation yet)."""
    best_epoch: int | None = None
    """Epoch of ``best_metric`` (what ``best/`` holds)."""
    bad_epochs: int = 0
    """Epochs since the last improvement (early stopping)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """One log row per completed epoch (losses, validation metrics, seconds)."""
    complete: bool = False
    """Whether the stage has finished (its last epoch done, or stopped early)."""
    stopped_early: bool = False
    """Whether finetuning stopped for lack of improvement."""
    trained_sides: list[str] = field(default_factory=list)
    """Embedding sides (``collab``, ``content``) that have completed at least one pass, in this stage or the
    pretraining it starts from: mutual regularization pulls only toward these (docs/DESIGN.md §3)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageState:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise CLLM4RecError(f"state.json has unknown field(s): {', '.join(sorted(unknown))}")
        state = cls(**data)
        if "trained_sides" not in data:  # written before the field existed: the logged passes say it
            for objective in OBJECTIVES:
                if any(math.isfinite(row.get(objective.loss_key, math.nan)) for row in state.history):
                    state.mark_trained(objective.side)
        return state

    def mark_trained(self, side: str) -> None:
        """Record that ``side`` has completed a pass (the list stays sorted, so it compares as a set)."""
        self.trained_sides = sorted({*self.trained_sides, side})

    def reg_weight(self, side: str, lambda_c: float) -> float:
        """``lambda_c`` for a pass training ``side`` when the other side has been trained, else 0: pulling
        toward randomly initialised tables would only drag ``side`` toward noise (docs/DESIGN.md §3)."""
        other = "content" if side == "collab" else "collab"
        return lambda_c if other in self.trained_sides else 0.0


def resume_stage(
    run: RunFolder, stage: str, ctx: Context, optimizers: dict[str, torch.optim.Optimizer]
) -> StageState | None:
    """Restore the ID tables, optimizers and state of ``<stage>/last`` when it exists; None when it does not."""
    saved = read_state(run.last(stage))
    if saved is None:
        return None
    load_tables(ctx.model, run.last(stage))
    load_optimizers(optimizers, run.last(stage))
    return StageState.from_dict(saved)
