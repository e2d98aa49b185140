"""The extended (words + users + items) vocabulary and batching of prompt/main-text documents."""

from cllm4rec.tokenization.batch import Batch, collate
from cllm4rec.tokenization.ids import ID_PATTERN, IDTokenizer

__all__ = ["ID_PATTERN", "Batch", "IDTokenizer", "collate"]
