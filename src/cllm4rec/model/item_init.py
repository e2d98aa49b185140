"""A co-occurrence start for the collaborative item table (``model.item_init=svd``; docs/DESIGN.md §4).

On sparse catalogues (a median of four training items a user) the randomly started item table needs many
epochs before the item head ranks better than popularity, while item-item models (EASE, ItemKNN) find the
co-occurrence structure in one solve. This starts the table from it: the top singular vectors of the
degree-normalised interaction matrix ``D_u^-1/2 X D_i^-1/2`` (the items' PureSVD / spectral factors,
scaled by the square root of their singular values), spread over the hidden width by a seeded random
orthonormal map and scaled to the random start's standard deviation, so the backbone sees inputs of the
size it would otherwise see. The tables train from there exactly as from a random start.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import svds

SVD_RANK = 64
"""Singular vectors kept (fewer when the catalogue is smaller)."""


def svd_item_factors(train: sp.csr_matrix, width: int, std: float, seed: int) -> torch.Tensor:
    """(items, width) starting rows for the item table from the training interactions ``train`` (users x items)."""
    x = sp.csr_matrix(train, dtype=np.float64)
    x.data[:] = 1.0
    du = np.asarray(x.sum(axis=1)).ravel()
    di = np.asarray(x.sum(axis=0)).ravel()
    norm = sp.diags(1.0 / np.sqrt(np.maximum(du, 1))) @ x @ sp.diags(1.0 / np.sqrt(np.maximum(di, 1)))
    rank = max(1, min(SVD_RANK, width, min(x.shape) - 1))
    rng = np.random.default_rng(seed)
    _, s, vt = svds(norm, k=rank, v0=rng.standard_normal(min(x.shape)), random_state=seed)
    factors = vt.T * np.sqrt(s)[None, :]  # (J, k)
    basis, _ = np.linalg.qr(rng.standard_normal((width, rank)))  # (d, k) orthonormal columns
    rows = factors @ basis.T  # (J, d)
    rows *= std / max(float(rows.std()), 1e-12)
    return torch.as_tensor(rows, dtype=torch.float32)
