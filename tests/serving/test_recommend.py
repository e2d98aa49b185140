"""load_run and recommend(): known users, raw histories, self-contained run folders, damaged checkpoints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.data import Dataset
from cllm4rec.runs.checkpoint import write_manifest
from cllm4rec.serving import Query, load_run, recommend


@pytest.fixture(scope="module")
def loaded(tiny_run: Path):
    return load_run(tiny_run, device="cpu")


def test_known_user_excludes_everything_known(loaded, run_dataset: Dataset) -> None:
    ds = run_dataset
    recs = recommend(loaded, [Query(user="u3")], k=5)[0]
    assert [r.rank for r in recs] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in zip(recs, recs[1:], strict=False))
    u = ds.user_index["u3"]
    seen = {ds.item_ids[j] for s in ("train", "valid", "test") for j in ds.items_of(u, s)}
    assert not seen & {r.item for r in recs}
    assert all(r.title == ds.item_title(ds.item_index[r.item]) for r in recs)


def test_batches_and_mixed_queries_agree_with_single_ones(loaded) -> None:
    queries = [Query(user="u3"), Query(history=("i1", "i2")), Query(user="u4")]
    together = recommend(loaded, queries, k=4)
    alone = [recommend(loaded, [q], k=4)[0] for q in queries]
    assert [[r.item for r in rs] for rs in together] == [[r.item for r in rs] for rs in alone]
    assert not {"i1", "i2"} & {r.item for r in together[1]}


def test_scores_match_the_recommender(loaded, run_dataset: Dataset) -> None:
    """recommend() ranks exactly what the Recommender scores for the same history."""
    u = run_dataset.user_index["u5"]
    history = loaded.catalog.known[[u]]
    scores = loaded.recommender.score(np.array([u]), history)[0]
    scores[history.indices] = -np.inf
    recs = recommend(loaded, [Query(user="u5")], k=3)[0]
    assert [run_dataset.item_index[r.item] for r in recs] == np.argsort(-scores, kind="stable")[:3].tolist()


@pytest.mark.parametrize(
    ("query", "k", "message"),
    [
        (Query(user="nobody"), 3, "unknown user"),
        (Query(history=("i1", "zzz")), 3, "unknown item"),
        (Query(history=()), 3, "history is empty"),
        (Query(user="u1"), 0, "positive"),
        (Query(user="u1"), 1000, "larger than the number of items"),
        (Query(user="u1"), 79, "has not seen"),
    ],
)
def test_bad_queries(loaded, query: Query, k: int, message: str) -> None:
    with pytest.raises(CLLM4RecError, match=message):
        recommend(loaded, [query], k=k)


def test_query_names_exactly_one_thing() -> None:
    with pytest.raises(CLLM4RecError, match="either a user or a history"):
        Query(user="u1", history=("i1",))
    with pytest.raises(CLLM4RecError, match="either a user or a history"):
        Query()


def _moved_copy(tiny_run: Path, tmp_path: Path) -> Path:
    """The run folder copied to a new place, recorded as trained on a dataset copy (delete it to test)."""
    data = tmp_path / "data"
    shutil.copytree(tiny_run.parent / "data", data)
    run = tmp_path / "elsewhere" / "run"
    shutil.copytree(tiny_run, run)
    for file in [run / "run.json", *run.glob("*/*/dataset.json")]:
        record = json.loads(file.read_text())
        record["dataset" if file.name == "run.json" else "path"] = str(data)
        file.write_text(json.dumps(record))
        if file.name == "dataset.json":
            write_manifest(file.parent)  # re-sign the edited checkpoint
    return run


def test_moved_run_serves_without_its_dataset(tiny_run: Path, tmp_path: Path, loaded) -> None:
    run = _moved_copy(tiny_run, tmp_path)
    shutil.rmtree(tmp_path / "data")
    moved = load_run(run, device="cpu")
    queries = [Query(user="u3"), Query(history=("i1", "i2"))]
    expected = [[r.item for r in rs] for rs in recommend(loaded, queries, k=5)]
    assert [[r.item for r in rs] for rs in recommend(moved, queries, k=5)] == expected
    with pytest.raises(CLLM4RecError, match="--data"):
        moved.dataset()
    assert moved.dataset(tiny_run.parent / "data").n_users == 60  # the same content elsewhere: accepted
    other = tmp_path / "other"
    shutil.copytree(tiny_run.parent / "data", other)
    meta = json.loads((other / "meta.json").read_text())
    meta["content_hash"] = "0" * 64
    (other / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CLLM4RecError, match="differs from the one"):
        moved.dataset(other)


@pytest.mark.parametrize("member", ["model/id_embeddings.safetensors", "catalog/items.json", "model/model.json"])
def test_damaged_checkpoint_file_is_named(tiny_run: Path, tmp_path: Path, member: str) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    target = run / "finetune" / "best" / member
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    with pytest.raises(CLLM4RecError, match=f"{target}.*truncated or corrupted"):
        load_run(run, device="cpu")
