"""The keys of an epoch row in ``<stage>/log.jsonl``, defined once for the loops, the plot and the summary line.

A row holds ``epoch``, ``phase``, ``seconds``, the loss and regularization of each objective that ran
(``collab_loss``, ``collab_reg``, ...; see :mod:`cllm4rec.training.objectives`) and, after validation, every
metric prefixed ``valid_`` plus ``valid_score`` (the selection score); ``trace`` holds each pass's smoothed
loss every few steps; ``processes``, ``batch_size`` (global) and ``process_batch_size`` say how the stage's
batches were split (docs/DESIGN.md §10).
"""

from __future__ import annotations

from cllm4rec.evaluation import DEFAULT_SELECTION_KEYS
from cllm4rec.training.objectives import COLLAB, CONTENT, LOSS_KEYS, REC

TRACE_KEY = "trace"
"""Per loss key, [fraction of the pass, smoothed loss] points logged every few steps (the curves' detail)."""
VALID_PREFIX = "valid_"
VALID_SCORE = f"{VALID_PREFIX}score"
PROCESSES = "processes"
"""How many processes trained the epoch (the launcher's process count; 1 without a launcher)."""
BATCH_SIZE = "batch_size"
"""Documents per optimizer step, over all processes (the stage's ``batch_size``)."""
PROCESS_BATCH_SIZE = "process_batch_size"
"""Documents per optimizer step on one process: ``batch_size`` divided by ``processes``, rounded up."""


def valid_key(metric: str) -> str:
    """``recall@20`` -> ``valid_recall@20``."""
    return f"{VALID_PREFIX}{metric}"


PLOTTED_METRIC_KEYS = tuple(valid_key(k) for k in DEFAULT_SELECTION_KEYS)
"""Validation metrics drawn in ``training_curves.png``."""
SUMMARY_KEYS = (COLLAB.loss_key, REC.loss_key, CONTENT.loss_key, valid_key("recall@20"), valid_key("ndcg@100"))
"""What the one-line epoch summary prints, when present."""

__all__ = [
    "BATCH_SIZE",
    "PROCESS_BATCH_SIZE",
    "PROCESSES",
    "TRACE_KEY",
    "LOSS_KEYS",
    "PLOTTED_METRIC_KEYS",
    "SUMMARY_KEYS",
    "VALID_PREFIX",
    "VALID_SCORE",
    "valid_key",
]
