"""Reader for the original MovieLens 100K folder: u.data, u.item, u.user and an optional movie_wiki.csv.

Item text: ``title`` (year stripped, trailing article moved to the front), ``year``, ``genres`` (from the
genre flags) and, when ``movie_wiki.csv`` is present, ``description``. User text: one ``profile`` sentence
built from age, gender and occupation ("a 24-year-old male technician").
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.core.files import sha256_file
from cllm4rec.data.raw import RawDataset, parse_number, read_lines
from cllm4rec.data.text import readable_title, user_profile

GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)(?P<rest>.*)$")


def read_movielens(path: str | Path) -> RawDataset:
    """Read a MovieLens 100K folder (or its ``u.data`` file)."""
    path = Path(path)
    if not path.exists():
        raise CLLM4RecError(f"MovieLens folder {path} does not exist")
    folder = path.parent if path.is_file() else path
    data_file = folder / "u.data"
    if not data_file.is_file():
        raise CLLM4RecError(f"{folder} is not a MovieLens 100K folder (no u.data)")
    files = {"u.data": sha256_file(data_file)}

    users: list[str] = []
    items: list[str] = []
    ratings: list[float] = []
    times: list[float] = []
    for lineno, line in read_lines(data_file, "latin-1"):
        if not line.strip():
            continue
        parts = line.split("\t")
        where = f"{data_file}:{lineno}"
        if len(parts) != 4:
            raise CLLM4RecError(f"{where}: expected 4 tab-separated fields (user item rating time), got {len(parts)}")
        users.append(parts[0].strip())
        items.append(parts[1].strip())
        ratings.append(parse_number(parts[2], "rating", where))
        times.append(parse_number(parts[3], "timestamp", where))

    item_text: dict[str, dict[str, str]] = {}
    item_file = folder / "u.item"
    raw_titles: dict[str, str] = {}
    if item_file.is_file():
        files["u.item"] = sha256_file(item_file)
        for lineno, line in _read_mixed(item_file):
            if not line.strip():
                continue
            parts = line.split("|")
            if len(parts) < 5 + len(GENRES):
                raise CLLM4RecError(f"{item_file}:{lineno}: expected {5 + len(GENRES)} '|'-separated fields")
            item_id, raw_title, date = parts[0].strip(), parts[1], parts[2]
            raw_titles[item_id] = raw_title
            fields = _item_fields(raw_title, date, parts[5 : 5 + len(GENRES)])
            if fields:
                item_text[item_id] = fields

    wiki_file = folder / "movie_wiki.csv"
    if wiki_file.is_file() and raw_titles:
        files["movie_wiki.csv"] = sha256_file(wiki_file)
        summaries = _read_wiki(wiki_file)
        for item_id, raw_title in raw_titles.items():
            summary = summaries.get(raw_title)
            if summary:
                item_text.setdefault(item_id, {})["description"] = summary

    user_text: dict[str, dict[str, str]] = {}
    user_file = folder / "u.user"
    if user_file.is_file():
        files["u.user"] = sha256_file(user_file)
        for lineno, line in read_lines(user_file, "latin-1"):
            if not line.strip():
                continue
            parts = line.split("|")
            if len(parts) < 4:
                raise CLLM4RecError(f"{user_file}:{lineno}: expected user|age|gender|occupation|zip")
            profile = user_profile(parts[1], parts[2], parts[3])
            if profile:
                user_text[parts[0].strip()] = {"profile": profile}

    return RawDataset(
        users=users,
        items=items,
        ratings=np.asarray(ratings),
        timestamps=np.asarray(times),
        item_text=item_text,
        user_text=user_text,
        source={"format": "movielens", "input": str(folder.resolve()), "files": files},
    )


def _item_fields(raw_title: str, date: str, flags: list[str]) -> dict[str, str]:
    """Title without "(1995)", the year (from the title, else the release date) and the flagged genres."""
    fields: dict[str, str] = {}
    m = _YEAR.match(raw_title.strip())
    if m:
        title = f"{m.group('title')} {m.group('rest').strip()}".strip()
        year = m.group("year")
    else:
        title = raw_title.strip()
        year = date.strip()[-4:] if re.search(r"\d{4}$", date.strip()) else ""
    if title and title.lower() != "unknown":
        fields["title"] = readable_title(title)
    if year:
        fields["year"] = year
    genres = [g for g, flag in zip(GENRES, flags, strict=True) if flag.strip() == "1" and g != "unknown"]
    if genres:
        fields["genres"] = ", ".join(genres)
    return fields


def _read_mixed(path: Path) -> list[tuple[int, str]]:
    """Lines decoded as UTF-8 where valid, else latin-1: GroupLens' u.item is latin-1, but some copies
    (this one included) carry UTF-8 replacement characters, which latin-1 would turn into mojibake."""
    out = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            raw = raw.rstrip(b"\r\n")
            try:
                out.append((lineno, raw.decode("utf-8")))
            except UnicodeDecodeError:
                out.append((lineno, raw.decode("latin-1")))
    return out


def _read_wiki(path: Path) -> dict[str, str]:
    """``movie_title`` -> ``wiki_summary`` from the optional summaries file."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"movie_title", "wiki_summary"} <= set(reader.fieldnames):
                raise CLLM4RecError(f"{path}: expected columns movie_title,wiki_summary")
            return {row["movie_title"]: row["wiki_summary"] or "" for row in reader}
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CLLM4RecError(f"cannot read {path}: {exc}") from exc
