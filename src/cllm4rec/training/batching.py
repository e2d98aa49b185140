"""Length-bucketed batching: documents of similar length share a batch, so little compute goes to padding."""

from __future__ import annotations

import numpy as np


def bucket_batches(lengths: np.ndarray | list[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Split document indices into batches of similar length, in random batch order.

    Documents are sorted by length with random tie-breaking, cut into consecutive batches, and the batch
    order is shuffled, so each epoch still sees a different sequence of batches.
    """
    lengths = np.asarray(lengths)
    if len(lengths) == 0:
        return []
    order = np.lexsort((rng.random(len(lengths)), lengths))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def padding_share(lengths: np.ndarray | list[int], batches: list[np.ndarray]) -> float:
    """Share of computed positions that are padding under ``batches``."""
    lengths = np.asarray(lengths)
    computed = sum(int(lengths[b].max()) * len(b) for b in batches)
    return 1.0 - float(lengths.sum()) / computed if computed else 0.0
