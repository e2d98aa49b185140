"""Data layer: readers for common formats, preprocessing, splitting and the prepared-dataset folder."""

from cllm4rec.data.dataset import Dataset, Review
from cllm4rec.data.fetch import fetch_ml100k
from cllm4rec.data.options import FORMATS, PrepareOptions, ReaderOptions
from cllm4rec.data.prepare import build_dataset, prepare_dataset
from cllm4rec.data.raw import RawDataset
from cllm4rec.data.readers import read_raw
from cllm4rec.data.stats import dataset_stats

__all__ = [
    "FORMATS",
    "Dataset",
    "PrepareOptions",
    "RawDataset",
    "ReaderOptions",
    "Review",
    "build_dataset",
    "dataset_stats",
    "fetch_ml100k",
    "prepare_dataset",
    "read_raw",
]
