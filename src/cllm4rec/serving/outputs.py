"""Writing result files (per-user metrics, batch recommendations) atomically as CSV or JSON lines."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.core.files import write_text_atomic

OUTPUT_SUFFIXES = (".csv", ".jsonl")


def check_output_path(path: str | Path) -> Path:
    """Refuse an output path whose suffix is neither .csv nor .jsonl, or whose folder does not exist."""
    path = Path(path)
    if path.suffix not in OUTPUT_SUFFIXES:
        raise CLLM4RecError(f"output file {path} must end in .csv or .jsonl")
    if not path.parent.is_dir():
        raise CLLM4RecError(f"folder of output file {path} does not exist")
    return path


def write_rows(path: str | Path, rows: Iterable[dict[str, Any]], columns: list[str]) -> int:
    """Write flat rows to ``path`` (CSV with a header, or JSON lines), atomically; return the row count."""
    path = check_output_path(path)
    rows = list(rows)
    if path.suffix == ".csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buf.getvalue()
    else:
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    write_text_atomic(path, text)
    return len(rows)
