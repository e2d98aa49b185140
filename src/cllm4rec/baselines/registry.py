"""The baselines by name: display label and where the class lives (import-free, so the CLI stays fast)."""

from __future__ import annotations

from typing import NamedTuple


class BaselineEntry(NamedTuple):
    """One registered baseline."""

    label: str
    """Name in tables and plots."""
    target: str
    """``module:Class``, imported on demand so that torch loads only for Multi-VAE."""


BASELINES: dict[str, BaselineEntry] = {
    "pop": BaselineEntry("Popularity", "cllm4rec.baselines.pop:Popularity"),
    "itemknn": BaselineEntry("ItemKNN", "cllm4rec.baselines.itemknn:ItemKNN"),
    "ease": BaselineEntry("EASE", "cllm4rec.baselines.ease:EASE"),
    "multivae": BaselineEntry("Multi-VAE", "cllm4rec.baselines.multivae:MultiVAE"),
    "tfidf": BaselineEntry("TF-IDF kNN", "cllm4rec.baselines.content_knn:TfidfKNN"),
    "llmknn": BaselineEntry("LLM-embedding kNN", "cllm4rec.baselines.content_knn:LLMEmbeddingKNN"),
}
