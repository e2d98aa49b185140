"""Keep freed tensor memory from staying resident: large blocks straight from the OS (docs/DESIGN.md §2).

A training step allocates and frees many tensors of 5-30 MB (a layer's activations; more of them when the
backbone's layers are checkpointed and recomputed). glibc serves allocations below its mmap threshold from
the heap and raises that threshold (up to 32 MB) each time a mapped block is freed, so after a few steps
these tensors come from the heap, and a fragmented heap keeps the freed memory resident: measured, 1.5 GB
of a 3 GB peak RSS on ML-100K (docs/BENCHMARKS.md, "Peak memory"). A fixed threshold of 1 MiB sends every
large tensor to its own mapping, returned to the OS when freed. No-op off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_MMAP_THRESHOLD = -3  # mallopt parameter number in glibc's malloc.h
MMAP_THRESHOLD = 1 << 20
"""Allocations of at least this many bytes get their own mapping (a fixed value also stops glibc raising it)."""


def release_large_blocks(threshold: int = MMAP_THRESHOLD) -> bool:
    """Set glibc's mmap threshold for this process; False where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
