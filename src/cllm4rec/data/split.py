"""Per-user train/validation/test splits.

``random`` (the paper's protocol, the default): a user with ``n >= 3`` interactions gets
``n_test = n_valid = max(1, floor(n / 10 + 1/2))`` held-out items (10% each, rounded half up, at least one),
drawn at random; the rest (at least one) is train. Users with fewer than 3 interactions stay train-only.
The randomness is one ``numpy.random.default_rng(seed).random(nnz)`` draw over the interactions in canonical
(user, item) order; each user's items are ordered by their draw, the first ``n_test`` go to test and the next
``n_valid`` to validation. The same data and seed therefore always give the same split, on any machine.

``loo`` (leave-last-out): for a user with ``n >= 3`` interactions, the latest one is test and the second
latest validation (timestamp ties: the later row of the source file counts as later); users with fewer than
3 stay train-only. It needs timestamps.
"""

from __future__ import annotations

import numpy as np

TRAIN, VALID, TEST = 0, 1, 2
MIN_INTERACTIONS = 3


def holdout_size(n: np.ndarray) -> np.ndarray:
    """Validation (= test) size for ``n`` interactions: ``max(1, round_half_up(n/10))``, 0 if n < 3."""
    n = np.asarray(n, dtype=np.int64)
    return np.where(n >= MIN_INTERACTIONS, np.maximum(1, (n + 5) // 10), 0)


def random_split(users: np.ndarray, n_users: int, seed: int) -> np.ndarray:
    """Split label (TRAIN/VALID/TEST) per interaction; ``users`` in canonical (user, item) order."""
    keys = np.random.default_rng(seed).random(len(users))
    perm = np.lexsort((keys, users))
    n = np.bincount(users, minlength=n_users)
    hold = holdout_size(n)
    return _assign(users, perm, n, hold, hold)


def leave_last_out(users: np.ndarray, n_users: int, timestamps: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Split label per interaction: latest -> test, second latest -> validation (users with >= 3)."""
    perm = np.lexsort((-order, -timestamps, users))  # per user: newest first
    n = np.bincount(users, minlength=n_users)
    hold = np.where(n >= MIN_INTERACTIONS, 1, 0)
    return _assign(users, perm, n, hold, hold)


def _assign(users: np.ndarray, perm: np.ndarray, n: np.ndarray, n_test: np.ndarray, n_valid: np.ndarray) -> np.ndarray:
    """Given ``perm`` grouping each user's interactions (in priority order), label the first ``n_test`` of
    each user TEST, the next ``n_valid`` VALID and the rest TRAIN."""
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    sorted_users = users[perm]
    rank = np.arange(len(perm)) - starts[sorted_users]
    t, v = n_test[sorted_users], n_valid[sorted_users]
    labels = np.full(len(perm), TRAIN, dtype=np.int8)
    labels[perm] = np.where(rank < t, TEST, np.where(rank < t + v, VALID, TRAIN))
    return labels
