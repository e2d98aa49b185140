"""Small helpers on the binary user x item CSR matrices of a dataset."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def row_items(matrix: sp.csr_matrix, row: int) -> np.ndarray:
    """Column indices (items) of one CSR row (a user), a view in stored (sorted) order."""
    return matrix.indices[matrix.indptr[row] : matrix.indptr[row + 1]]
