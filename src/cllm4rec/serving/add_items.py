"""``add-items``: new items, known only by their text, added to a trained run (docs/DESIGN.md §11).

The items file is JSON lines, one item each: an ``id`` plus text fields, e.g.
``{"id": "B00X", "title": "Wooden train set", "categories": "Toys > Trains"}``. The whole file is checked
before anything is computed (a malformed line, a missing or repeated ID, an ID the run already has, an item
without text: one error naming the line), then the items are placed from their text
(:func:`cllm4rec.model.new_items.place_new_items`) and the run gets a new checkpoint, ``RUN/items/``,
written atomically: the trained checkpoints stay untouched, and ``recommend``, ``evaluate`` and ``serve`` use
the new one from then on (a running server after a restart). Adding again extends ``items/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.core.files import folder_lock
from cllm4rec.model.new_items import PlacementOptions, place_new_items
from cllm4rec.runs.checkpoint import RunRecord, save_checkpoint
from cllm4rec.runs.folder import RunFolder
from cllm4rec.serving.recommend import load_run


def read_items_file(path: str | Path, known_ids: set[str]) -> tuple[list[str], list[dict[str, str]]]:
    """(IDs, text fields) of every item in ``path``; the first bad line is an error that names it."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CLLM4RecError(f"cannot read the items file {path}: {exc}") from exc
    ids: list[str] = []
    texts: list[dict[str, str]] = []
    seen: set[str] = set()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row: Any = json.loads(line)
        except ValueError as exc:
            raise CLLM4RecError(f"{where}: not a JSON object ({exc})") from exc
        if not isinstance(row, dict):
            raise CLLM4RecError(f"{where}: expected a JSON object with an id and text fields")
        ext = row.pop("id", None)
        if not isinstance(ext, str | int) or isinstance(ext, bool) or not str(ext).strip():
            raise CLLM4RecError(f'{where}: missing or empty "id"')
        ext = str(ext).strip()
        if ext in known_ids:
            raise CLLM4RecError(f"{where}: item {ext!r} already exists in this run")
        if ext in seen:
            raise CLLM4RecError(f"{where}: item {ext!r} appears twice in the file")
        bad = [key for key, value in row.items() if not isinstance(value, str)]
        if bad:
            raise CLLM4RecError(f"{where}: text field {bad[0]!r} is not a string")
        fields = {key: " ".join(value.split()) for key, value in row.items() if value.strip()}
        if not fields:
            raise CLLM4RecError(f"{where}: item {ext!r} has no text (give at least one non-empty text field)")
        seen.add(ext)
        ids.append(ext)
        texts.append(fields)
    if not ids:
        raise CLLM4RecError(f"{path} holds no items")
    return ids, texts


def add_items(
    run_dir: str | Path,
    items_file: str | Path,
    *,
    data: str | Path | None = None,
    options: PlacementOptions | None = None,
    device: str = "auto",
    progress: bool = False,
) -> dict[str, Any]:
    """Place the items of ``items_file`` in the run's final model and write ``RUN/items/``; returns a summary.

    The map from text to collaborative rows learns from the items the run was trained on, so their texts
    are read from the run's dataset (``data`` when it moved)."""
    with folder_lock(run_dir, "run folder"):  # no train or add-items may write the run meanwhile
        return _add_locked(run_dir, items_file, data, options, device, progress)


def _add_locked(
    run_dir: str | Path,
    items_file: str | Path,
    data: str | Path | None,
    options: PlacementOptions | None,
    device: str,
    progress: bool,
) -> dict[str, Any]:
    loaded = load_run(run_dir, device=device, progress=progress)
    catalog = loaded.catalog
    ids, texts = read_items_file(items_file, set(catalog.item_ids))
    dataset = loaded.dataset(data)
    warm_texts = [*dataset.item_text, *catalog.added]
    counts = np.concatenate([np.asarray(dataset.train.sum(axis=0)).ravel(), np.zeros(len(catalog.added))])
    model = loaded.recommender.model
    users = np.arange(catalog.n_users)
    states = loaded.recommender.head_states(users, catalog.known)  # every user's whole history
    timings = place_new_items(
        model, texts, warm_texts, counts, options, user_states=states, interactions=catalog.known, progress=progress
    )
    record = RunRecord(loaded.record.config, loaded.record.dataset, catalog.with_items(ids, texts))
    state = {
        "stage": "items",
        "style": loaded.style,
        "base": str(loaded.checkpoint.relative_to(loaded.root)),
        "added": len(catalog.added) + len(ids),
    }
    target = RunFolder(loaded.root).items
    save_checkpoint(target, model, {}, state, record)
    return {"added": len(ids), "items": model.n_items, "checkpoint": str(target), **timings}
