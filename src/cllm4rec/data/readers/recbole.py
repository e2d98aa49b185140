"""Reader for RecBole atomic files: ``<name>.inter`` plus optional ``<name>.item`` and ``<name>.user``.

Each file is tab-separated with a ``field:type`` header (types ``token``, ``token_seq``, ``float``,
``float_seq``). Interactions come from ``user_id``/``item_id``/``rating``/``timestamp`` (or the columns named
in the reader options). Item text is taken from the columns named with ``--item-text-fields`` or, by
convention, movie_title/title/name -> ``title``, class/genre(s) -> ``genres``, categories -> ``categories``,
release_year/year -> ``year``, brand, description. User age/gender/occupation become one ``profile`` sentence.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.core.files import sha256_file
from cllm4rec.data.options import ReaderOptions
from cllm4rec.data.raw import RawDataset, parse_number, read_lines
from cllm4rec.data.text import is_placeholder, readable_title, user_profile

ITEM_FIELD_NAMES = {
    "movie_title": "title",
    "title": "title",
    "name": "title",
    "class": "genres",
    "genre": "genres",
    "genres": "genres",
    "categories": "categories",
    "category": "categories",
    "release_year": "year",
    "year": "year",
    "brand": "brand",
    "description": "description",
}
PROFILE_COLUMNS = ("age", "gender", "occupation")
TEXT_COLUMNS = ("review", "review_text", "text")


class AtomicFile:
    """A parsed RecBole atomic file: column names, their types, and rows with their line numbers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        lines = read_lines(path)
        header = next((line for _, line in lines), None)
        if header is None or not header.strip():
            raise CLLM4RecError(f"{path} is empty (expected a 'field:type' header)")
        self.names: list[str] = []
        self.types: list[str] = []
        for col in header.split("\t"):
            name, colon, typ = col.strip().partition(":")
            if not colon or not name:
                raise CLLM4RecError(f"{path}:1: header column {col!r} is not 'field:type' (not a RecBole file?)")
            self.names.append(name)
            self.types.append(typ)
        self.rows: list[tuple[int, list[str]]] = []
        for lineno, line in lines:
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != len(self.names):
                raise CLLM4RecError(f"{path}:{lineno}: {len(parts)} tab-separated fields, header has {len(self.names)}")
            self.rows.append((lineno, parts))

    def index(self, name: str) -> int:
        """Column position of ``name`` (with or without ``:type``), or an error listing the columns."""
        name = name.partition(":")[0]
        if name in self.names:
            return self.names.index(name)
        raise CLLM4RecError(f"{self.path}: no column {name!r} (columns: {', '.join(self.names)})")

    def find(self, *candidates: str) -> int | None:
        for cand in candidates:
            if cand in self.names:
                return self.names.index(cand)
        return None

    def column(self, idx: int) -> Iterator[tuple[int, str]]:
        for lineno, parts in self.rows:
            yield lineno, parts[idx]


def read_recbole(path: str | Path, options: ReaderOptions | None = None) -> RawDataset:
    """Read ``<name>.inter`` (``path`` is the file or its folder) and its ``.item``/``.user`` companions."""
    options = options or ReaderOptions()
    inter_path = _locate_inter(Path(path))
    name = inter_path.stem
    folder = inter_path.parent
    inter = AtomicFile(inter_path)
    files = {inter_path.name: sha256_file(inter_path)}

    u_col = inter.index(options.user_col or "user_id")
    i_col = inter.index(options.item_col or "item_id")
    r_col = inter.index(options.rating_col) if options.rating_col else inter.find("rating")
    t_col = inter.index(options.time_col) if options.time_col else inter.find("timestamp")
    x_col = inter.index(options.text_col) if options.text_col else inter.find(*TEXT_COLUMNS)

    users = [parts[u_col].strip() for _, parts in inter.rows]
    items = [parts[i_col].strip() for _, parts in inter.rows]
    ratings = times = None
    if r_col is not None:
        ratings = np.array([parse_number(v, "rating", f"{inter_path}:{n}") for n, v in inter.column(r_col)])
    if t_col is not None:
        times = np.array([parse_number(v, "timestamp", f"{inter_path}:{n}") for n, v in inter.column(t_col)])
    reviews = [parts[x_col] for _, parts in inter.rows] if x_col is not None else None

    item_text: dict[str, dict[str, str]] = {}
    item_path = folder / f"{name}.item"
    if item_path.is_file():
        files[item_path.name] = sha256_file(item_path)
        item_text = _item_text(AtomicFile(item_path), options.item_col or "item_id", options.item_text_fields)
    elif options.item_text_fields:
        raise CLLM4RecError(f"--item-text-fields given but {item_path} does not exist")

    user_text: dict[str, dict[str, str]] = {}
    user_path = folder / f"{name}.user"
    if user_path.is_file():
        files[user_path.name] = sha256_file(user_path)
        user_text = _user_text(AtomicFile(user_path), options.user_col or "user_id", options.user_text_fields)
    elif options.user_text_fields:
        raise CLLM4RecError(f"--user-text-fields given but {user_path} does not exist")

    return RawDataset(
        users=users,
        items=items,
        ratings=ratings,
        timestamps=times,
        reviews=reviews,
        item_text=item_text,
        user_text=user_text,
        source={"format": "recbole", "input": str(inter_path.resolve()), "name": name, "files": files},
    )


def _locate_inter(path: Path) -> Path:
    if not path.exists():
        raise CLLM4RecError(f"RecBole input {path} does not exist")
    if path.is_file():
        if path.suffix != ".inter":
            raise CLLM4RecError(f"RecBole input {path} is not a .inter file")
        return path
    found = sorted(path.glob("*.inter"))
    if not found:
        raise CLLM4RecError(f"no .inter file in {path} (expected RecBole atomic files <name>.inter/.item/.user)")
    if len(found) > 1:
        same = [f for f in found if f.stem == path.name]
        if len(same) == 1:
            return same[0]
        raise CLLM4RecError(f"several .inter files in {path} ({', '.join(f.name for f in found)}); name one")
    return found[0]


def _parse_specs(specs: tuple[str, ...], atomic: AtomicFile) -> list[tuple[int, str]]:
    """``col`` or ``col=name`` -> (column position, output field name)."""
    out = []
    for spec in specs:
        col, eq, out_name = spec.partition("=")
        col = col.strip()
        idx = atomic.index(col)
        out.append((idx, out_name.strip() if eq else ITEM_FIELD_NAMES.get(col.lower(), col)))
    return out


def _item_text(atomic: AtomicFile, id_col: str, specs: tuple[str, ...] | None) -> dict[str, dict[str, str]]:
    id_idx = atomic.index(id_col)
    if specs:
        columns = _parse_specs(specs, atomic)
    else:
        columns = [
            (i, ITEM_FIELD_NAMES[n.lower()]) for i, n in enumerate(atomic.names) if n.lower() in ITEM_FIELD_NAMES
        ]
    out: dict[str, dict[str, str]] = {}
    for _, parts in atomic.rows:
        fields: dict[str, str] = {}
        for idx, field_name in columns:
            value = parts[idx].strip()
            if not value or is_placeholder(value) or fields.get(field_name):
                continue
            if field_name == "genres" and atomic.types[idx] == "token_seq":
                # RecBole separates sequence tokens by spaces
                value = ", ".join(g for g in value.split() if not is_placeholder(g))
            elif field_name == "title":
                value = readable_title(value)
            fields[field_name] = value
        if fields:
            out[parts[id_idx].strip()] = fields
    return out


def _user_text(atomic: AtomicFile, id_col: str, specs: tuple[str, ...] | None) -> dict[str, dict[str, str]]:
    id_idx = atomic.index(id_col)
    if specs:
        columns = _parse_specs(specs, atomic)
    else:
        columns = [(i, n) for i, n in enumerate(atomic.names) if n.lower() in PROFILE_COLUMNS]
    profile_cols = {atomic.names[i].lower(): i for i, _ in columns if atomic.names[i].lower() in PROFILE_COLUMNS}
    other_cols = [(i, name) for i, name in columns if atomic.names[i].lower() not in PROFILE_COLUMNS]
    out: dict[str, dict[str, str]] = {}
    for _, parts in atomic.rows:
        fields: dict[str, str] = {}
        if profile_cols:
            values = {k: parts[i] for k, i in profile_cols.items()}
            profile = user_profile(values.get("age"), values.get("gender"), values.get("occupation"))
            if profile:
                fields["profile"] = profile
        for idx, field_name in other_cols:
            if parts[idx].strip() and not is_placeholder(parts[idx]):
                fields[field_name] = parts[idx].strip()
        if fields:
            out[parts[id_idx].strip()] = fields
    return out
