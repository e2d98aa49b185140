"""Reader for any delimited text file with a header row: one interaction per row.

Columns are named with the reader options (``--user-col`` ...) or found by common names (user_id, userId,
reviewerID; item_id, movieId, asin; rating, overall; timestamp; review, text). The delimiter is
``--sep`` or sniffed from the start of the file (``,``, tab, ``;``, ``|``), falling back to ``,``.
Timestamps may be unix seconds or ISO dates (naive dates are read as UTC).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.core.files import sha256_file
from cllm4rec.data.options import ReaderOptions
from cllm4rec.data.raw import RawDataset, open_text, parse_number, require_file

# lower-cased names with "_", "-" and spaces removed
CANDIDATES = {
    "user": ("user", "userid", "reviewerid", "uid", "customerid"),
    "item": ("item", "itemid", "movieid", "asin", "productid", "iid", "bookid"),
    "rating": ("rating", "overall", "score", "stars"),
    "time": ("timestamp", "time", "unixreviewtime", "datetime", "date"),
    "text": ("review", "reviewtext", "text", "comment"),
}
SNIFF_DELIMITERS = ",\t;|"


def read_delimited(path: str | Path, options: ReaderOptions | None = None) -> RawDataset:
    """Read the file; unknown columns are ignored, a missing named column is an error."""
    options = options or ReaderOptions()
    path = require_file(path, "input file")
    try:
        with open_text(path, "utf-8-sig") as fh:
            sample = fh.read(1 << 16)
            fh.seek(0)
            sep = options.sep or _sniff(sample)
            reader = csv.reader(fh, delimiter=sep)
            header = next(reader, None)
            if not header:
                raise CLLM4RecError(f"{path} is empty (a header row is required)")
            header = [h.strip() for h in header]
            described = f"(columns: {', '.join(header)}; delimiter {sep!r})"
            cols = {
                "user": _column(header, options.user_col, "user", True, path, described),
                "item": _column(header, options.item_col, "item", True, path, described),
                "rating": _column(header, options.rating_col, "rating", False, path, described),
                "time": _column(header, options.time_col, "time", False, path, described),
                "text": _column(header, options.text_col, "text", False, path, described),
            }
            users: list[str] = []
            items: list[str] = []
            ratings: list[float] = []
            times: list[float] = []
            texts: list[str] = []
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                where = f"{path}:{reader.line_num}"
                if len(row) != len(header):
                    raise CLLM4RecError(f"{where}: {len(row)} fields, header has {len(header)} {described}")
                users.append(row[cols["user"]].strip())
                items.append(row[cols["item"]].strip())
                if not users[-1] or not items[-1]:
                    raise CLLM4RecError(f"{where}: empty user or item ID")
                if cols["rating"] is not None:
                    ratings.append(parse_number(row[cols["rating"]], "rating", where))
                if cols["time"] is not None:
                    times.append(_parse_time(row[cols["time"]], where))
                if cols["text"] is not None:
                    texts.append(row[cols["text"]])
    except csv.Error as exc:
        raise CLLM4RecError(f"{path}: malformed delimited file ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise CLLM4RecError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except (OSError, EOFError) as exc:
        raise CLLM4RecError(f"cannot read {path}: {exc}") from exc
    if not users:
        raise CLLM4RecError(f"{path} has a header but no rows")
    return RawDataset(
        users=users,
        items=items,
        ratings=np.asarray(ratings) if cols["rating"] is not None else None,
        timestamps=np.asarray(times) if cols["time"] is not None else None,
        reviews=texts if cols["text"] is not None else None,
        source={
            "format": "csv",
            "input": str(path.resolve()),
            "files": {path.name: sha256_file(path)},
            "columns": {k: (header[v] if v is not None else None) for k, v in cols.items()},
            "delimiter": sep,
        },
    )


def _sniff(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=SNIFF_DELIMITERS).delimiter
    except csv.Error:
        first = io.StringIO(sample).readline()
        counts = {d: first.count(d) for d in SNIFF_DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def _squash(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


def _column(header: list[str], named: str | None, role: str, required: bool, path: Path, described: str) -> int | None:
    """Position of the column for ``role``: the named one (exact, then case-insensitive) or a common name."""
    if named:
        if named in header:
            return header.index(named)
        lower = [h.lower() for h in header]
        if named.lower() in lower:
            return lower.index(named.lower())
        raise CLLM4RecError(f"{path}: no column {named!r} for the {role} {described}")
    squashed = [_squash(h) for h in header]
    for cand in CANDIDATES[role]:
        if cand in squashed:
            return squashed.index(cand)
    if required:
        raise CLLM4RecError(f"{path}: no {role} column found; name it with --{role}-col {described}")
    return None


def _parse_time(value: str, where: str) -> float:
    value = value.strip()
    try:
        return parse_number(value, "timestamp", where)
    except CLLM4RecError:
        pass
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise CLLM4RecError(f"{where}: timestamp {value!r} is neither unix seconds nor an ISO date") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()
