"""One reader per source format, all returning a :class:`~cllm4rec.data.raw.RawDataset`."""

from __future__ import annotations

import os
from pathlib import Path

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data.options import ReaderOptions, check_format
from cllm4rec.data.raw import RawDataset
from cllm4rec.data.readers.amazon import read_amazon, read_amazon_meta
from cllm4rec.data.readers.delimited import read_delimited
from cllm4rec.data.readers.movielens import read_movielens
from cllm4rec.data.readers.recbole import read_recbole

__all__ = ["read_raw", "read_amazon", "read_amazon_meta", "read_delimited", "read_movielens", "read_recbole"]


def read_raw(
    fmt: str,
    input: str | os.PathLike[str],
    meta: str | os.PathLike[str] | None = None,
    options: ReaderOptions | None = None,
) -> RawDataset:
    """Dispatch to the reader for ``fmt`` (movielens, recbole, amazon, csv)."""
    check_format(fmt)
    options = options or ReaderOptions()
    path = Path(input)
    if meta is not None and fmt != "amazon":
        raise CLLM4RecError(f"--meta is only used with --format amazon, not {fmt}")
    if fmt == "movielens":
        return read_movielens(path)
    if fmt == "recbole":
        return read_recbole(path, options)
    if fmt == "amazon":
        return read_amazon(path, meta)
    return read_delimited(path, options)
