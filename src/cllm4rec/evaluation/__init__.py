"""Evaluation: top-K ranking metrics, the recommender contract and the one harness (docs/DESIGN.md §6)."""

from cllm4rec.evaluation.harness import Evaluation, batch_users, evaluate
from cllm4rec.evaluation.metrics import (
    DEFAULT_NDCG_KS,
    DEFAULT_RECALL_KS,
    DEFAULT_SELECTION_KEYS,
    REPORT_KEYS,
    Evaluator,
    metric_title,
    ndcg_at_k,
    recall_at_k,
    selection_score,
    topk_items,
)
from cllm4rec.evaluation.protocol import Recommender

__all__ = [
    "DEFAULT_NDCG_KS",
    "DEFAULT_RECALL_KS",
    "DEFAULT_SELECTION_KEYS",
    "REPORT_KEYS",
    "Evaluation",
    "Evaluator",
    "Recommender",
    "batch_users",
    "evaluate",
    "metric_title",
    "ndcg_at_k",
    "recall_at_k",
    "selection_score",
    "topk_items",
]
