"""Reader for Amazon product-review dumps (McAuley et al.): 5-core review JSON lines and optional metadata.

Reviews: one JSON object per line, plain or ``.gz``, in the 2014 schema (reviewerID, asin, overall,
reviewText, summary, unixReviewTime) or the 2018 one (adds verified/style/vote; reviewText may be missing).
The review text of a pair is "summary. review text".

Metadata: 2014 lines are Python dict literals (single quotes), so they are parsed with ``ast.literal_eval``
(never ``eval``); 2018 lines are JSON. Item text fields: title, brand, categories (flattened and joined),
description (HTML tags dropped).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import numpy as np

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.core.files import sha256_file
from cllm4rec.data.raw import RawDataset, parse_number, read_lines, require_file
from cllm4rec.data.text import join_list, normalize_text, strip_tags


def read_amazon(path: str | Path, meta: str | Path | None = None) -> RawDataset:
    """Read a review file and, when given, the metadata file for the items it mentions."""
    path = require_file(path, "Amazon review file")
    meta_path = require_file(meta, "Amazon metadata file") if meta is not None else None
    users: list[str] = []
    items: list[str] = []
    ratings: list[float] = []
    times: list[float] = []
    reviews: list[str] = []
    for lineno, line in read_lines(path):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        record = _json_record(line, where)
        try:
            users.append(str(record["reviewerID"]).strip())
            items.append(str(record["asin"]).strip())
        except KeyError as exc:
            raise CLLM4RecError(f"{where}: review has no {exc.args[0]!r} field") from None
        if "overall" not in record:
            raise CLLM4RecError(f"{where}: review has no 'overall' rating")
        ratings.append(parse_number(record["overall"], "rating", where))
        if "unixReviewTime" not in record:
            raise CLLM4RecError(f"{where}: review has no 'unixReviewTime'")
        times.append(parse_number(record["unixReviewTime"], "unixReviewTime", where))
        reviews.append(review_text(record.get("summary"), record.get("reviewText")))
    if not users:
        raise CLLM4RecError(f"{path} holds no reviews")

    files = {path.name: sha256_file(path)}
    item_text: dict[str, dict[str, str]] = {}
    if meta_path is not None:
        files[meta_path.name] = sha256_file(meta_path)
        item_text = read_amazon_meta(meta_path, set(items))
    source: dict[str, Any] = {"format": "amazon", "input": str(path.resolve()), "files": files}
    if meta_path is not None:
        source["meta"] = str(meta_path.resolve())
    return RawDataset(
        users=users,
        items=items,
        ratings=np.asarray(ratings),
        timestamps=np.asarray(times),
        reviews=reviews,
        item_text=item_text,
        source=source,
    )


def review_text(summary: object, text: object) -> str:
    """``"summary. text"``; no extra full stop when the summary already ends in punctuation."""
    head = normalize_text(summary if isinstance(summary, str) else None)
    body = normalize_text(text if isinstance(text, str) else None)
    if head and body:
        return f"{head} {body}" if head[-1] in ".!?:;" else f"{head}. {body}"
    return head or body


def read_amazon_meta(path: Path, wanted: set[str] | None = None) -> dict[str, dict[str, str]]:
    """``asin`` -> item text fields, for the asins in ``wanted`` (all when ``None``)."""
    out: dict[str, dict[str, str]] = {}
    for lineno, line in read_lines(path):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            record = json.loads(line)
        except ValueError:
            try:
                record = ast.literal_eval(line)  # 2014 metadata: Python literals, safe to parse this way
            except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
                raise CLLM4RecError(f"{where}: neither JSON nor a Python dict literal ({exc})") from None
        if not isinstance(record, dict) or "asin" not in record:
            raise CLLM4RecError(f"{where}: metadata line is not an object with an 'asin'")
        asin = str(record["asin"]).strip()
        if wanted is not None and asin not in wanted:
            continue
        fields = meta_fields(record)
        if fields:
            out[asin] = fields
    return out


def meta_fields(record: dict[str, Any]) -> dict[str, str]:
    """Title, brand, categories and description of one metadata record, as plain text."""
    fields: dict[str, str] = {}
    title = normalize_text(strip_tags(str(record.get("title") or "")))
    if title:
        fields["title"] = title
    brand = normalize_text(strip_tags(str(record.get("brand") or "")))
    if brand:
        fields["brand"] = brand
    categories = join_list(record.get("categories") or record.get("category") or [])
    if categories:
        fields["categories"] = categories
    desc = record.get("description") or ""
    desc = " ".join(str(d) for d in desc) if isinstance(desc, list) else str(desc)
    desc = normalize_text(strip_tags(desc))
    if desc:
        fields["description"] = desc
    return fields


def _json_record(line: str, where: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CLLM4RecError(f"{where}: broken JSON line ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise CLLM4RecError(f"{where}: expected a JSON object, got {type(record).__name__}")
    return record
