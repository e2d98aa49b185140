"""Data layer: readers for common formats, preprocessing, splitting and the prepared-dataset folder."""

from cllm4rec.data.dataset import Dataset, Review

__all__ = ["Dataset", "Review"]
