"""The in-memory raw dataset every reader returns, and the file helpers the readers share.

Readers only parse: they keep every interaction in file order and leave filtering, merging, text
normalisation, re-indexing and splitting to :mod:`cllm4rec.data.preprocess` and :mod:`cllm4rec.data.split`,
so all formats go through exactly the same steps.
"""

from __future__ import annotations

import gzip
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from cllm4rec.core.errors import CLLM4RecError


@dataclass
class RawDataset:
    """Interactions as parallel columns (one entry per file row) plus texts keyed by external ID.

    ``ratings``/``timestamps``/``reviews`` are ``None`` when the source has no such column; ``reviews`` holds
    one (possibly empty) string per interaction. ``source`` records the format, input path and the sha256 of
    every file read, so a prepared folder says exactly what it was built from.
    """

    users: list[str]
    items: list[str]
    ratings: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    reviews: list[str] | None = None
    item_text: dict[str, dict[str, str]] = field(default_factory=dict)
    user_text: dict[str, dict[str, str]] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.users)
        if len(self.items) != n:
            raise CLLM4RecError(f"reader bug: {len(self.items)} items for {n} users")
        for name in ("ratings", "timestamps"):
            col = getattr(self, name)
            if col is not None:
                col = np.asarray(col, dtype=np.float64)
                if col.shape != (n,):
                    raise CLLM4RecError(f"reader bug: {name} has shape {col.shape}, expected ({n},)")
                setattr(self, name, col)
        if self.reviews is not None and len(self.reviews) != n:
            raise CLLM4RecError(f"reader bug: {len(self.reviews)} reviews for {n} interactions")

    def __len__(self) -> int:
        return len(self.users)


def require_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a Path when it is an existing file, else a user-facing error saying what was expected."""
    path = Path(path)
    if not path.exists():
        raise CLLM4RecError(f"{what} {path} does not exist")
    if not path.is_file():
        raise CLLM4RecError(f"{what} {path} is not a file")
    return path


def open_text(path: Path, encoding: str = "utf-8") -> IO[str]:
    """Open a text file, transparently gunzipping ``.gz`` (review dumps ship compressed)."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding=encoding, newline="")
    return open(path, encoding=encoding, newline="")


def read_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` without the line end; decoding or gzip errors name the file."""
    try:
        with open_text(path, encoding) as fh:
            for lineno, line in enumerate(fh, 1):
                yield lineno, line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise CLLM4RecError(f"{path}: not {encoding} text ({exc.reason} at byte {exc.start})") from exc
    except (OSError, EOFError) as exc:
        raise CLLM4RecError(f"cannot read {path}: {exc}") from exc


def parse_number(value: str, what: str, where: str) -> float:
    """A finite float, or an error naming the column and the ``file:line``."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise CLLM4RecError(f"{where}: {what} {value!r} is not a number") from None
    if not math.isfinite(x):
        raise CLLM4RecError(f"{where}: {what} {value!r} is not a finite number")
    return x
