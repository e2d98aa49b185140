"""Evaluation: top-K ranking metrics and the harness that scores users in batches (METHOD.md §6)."""

from cllm4rec.evaluation.metrics import (
    DEFAULT_NDCG_KS,
    DEFAULT_RECALL_KS,
    DEFAULT_SELECTION_KEYS,
    Evaluator,
    evaluate_scorer,
    ndcg_at_k,
    recall_at_k,
    selection_score,
    topk_items,
)

__all__ = [
    "DEFAULT_NDCG_KS",
    "DEFAULT_RECALL_KS",
    "DEFAULT_SELECTION_KEYS",
    "Evaluator",
    "evaluate_scorer",
    "ndcg_at_k",
    "recall_at_k",
    "selection_score",
    "topk_items",
]
