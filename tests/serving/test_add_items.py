"""add-items: new items from their text, written as RUN/items/ and recommended; bad files refused whole."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cllm4rec.cli.main import main
from cllm4rec.core.errors import CLLM4RecError
from cllm4rec.evaluation import evaluate
from cllm4rec.model.new_items import PlacementOptions, grow_item_tables, place_new_items, ridge_map
from cllm4rec.serving import Query, load_run, recommend
from cllm4rec.serving.add_items import add_items


@pytest.fixture()
def run_copy(tiny_run: Path, tmp_path: Path) -> Path:
    shutil.copytree(tiny_run.parent, tmp_path / "copy")
    return tmp_path / "copy" / "run"


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_added_items_round_trip_and_are_recommended(run_copy: Path, tmp_path: Path, run_dataset) -> None:
    before = load_run(run_copy, device="cpu")
    warm = before.recommender.model
    items = _write(
        tmp_path / "new.jsonl",
        [{"id": "new-1", "title": "Movie 3", "genres": "comedy"}, {"id": "new-2", "title": "A brand new drama"}],
    )
    summary = add_items(run_copy, items, options=PlacementOptions(passes=1, seed=0), device="cpu")
    assert summary["added"] == 2 and (run_copy / "items" / "manifest.json").is_file()
    after = load_run(run_copy, device="cpu")
    model = after.recommender.model
    assert after.checkpoint == run_copy / "items" and model.n_items == warm.n_items + 2
    assert after.catalog.item_ids[-2:] == ["new-1", "new-2"] and after.catalog.titles[-1] == "A brand new drama"
    for name in ("item_collab", "item_content", "user_collab"):  # every trained row exactly as it was
        assert torch.equal(
            getattr(model, name).weight[: getattr(warm, name).weight.shape[0]], getattr(warm, name).weight
        )
    assert torch.isfinite(model.item_collab.weight[-2:]).all() and model.item_collab.weight[-2:].abs().sum() > 0
    user = after.catalog.user_ids[0]
    ranked = recommend(after, [Query(user=user)], k=after.catalog.n_items - len(after.catalog.known[0].indices))
    assert {"new-1", "new-2"} <= {r.item for r in ranked[0]}
    # the warm ranking of the dataset is the trained model's, unchanged by the added items
    ours = evaluate(after.recommender.fit(run_dataset, split="test"), run_dataset, "test").metrics
    base = evaluate(before.recommender.fit(run_dataset, split="test"), run_dataset, "test").metrics
    assert ours == base
    # adding again extends items/; an ID that now exists is refused
    add_items(run_copy, _write(tmp_path / "more.jsonl", [{"id": "new-3", "title": "Third"}]), device="cpu")
    again = load_run(run_copy, device="cpu")
    assert again.catalog.item_ids[-3:] == ["new-1", "new-2", "new-3"] and len(again.catalog.added) == 3
    with pytest.raises(CLLM4RecError, match="already exists"):
        add_items(run_copy, _write(tmp_path / "dup.jsonl", [{"id": "new-2", "title": "x"}]), device="cpu")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"id": "a", "title": "ok"}, "{not json"], r"new.jsonl:2: not a JSON object"),
        ([{"title": "no id"}], r"new.jsonl:1: missing or empty \"id\""),
        ([{"id": "a", "title": "ok"}, {"id": "a", "title": "again"}], r"new.jsonl:2: item 'a' appears twice"),
        ([{"id": "b", "title": "  "}], r"new.jsonl:1: item 'b' has no text"),
        ([{"id": "c", "title": 5}], r"new.jsonl:1: text field 'title' is not a string"),
        ([{"id": "i0", "title": "exists"}], r"new.jsonl:1: item 'i0' already exists"),
    ],
)
def test_bad_items_files_are_refused_whole(run_copy: Path, tmp_path: Path, rows: list[object], message: str) -> None:
    path = _write(tmp_path / "new.jsonl", rows)
    code = main(["add-items", "--run", str(run_copy), "--items", str(path), "--device", "cpu", "--no-progress"])
    assert code != 0
    with pytest.raises(CLLM4RecError, match=message):
        add_items(run_copy, path, device="cpu")
    assert not (run_copy / "items").exists()


def test_placement_moves_only_new_rows_and_the_map_is_a_ridge_fit(tiny_backbone) -> None:
    from cllm4rec.model import CLLM4Rec

    model = CLLM4Rec(tiny_backbone, 5, 6, seed=0, item_bias=True)
    warm = {name: getattr(model, name).weight.detach().clone() for name in ("item_collab", "item_content")}
    texts = [{"title": f"thing number {j}"} for j in range(6)]
    place_new_items(model, [{"title": "thing number 2"}], texts, np.ones(6), PlacementOptions(passes=2, seed=1))
    assert model.n_items == 7 and model.item_bias is not None and model.item_bias.shape == (7,)
    for name, weight in warm.items():
        assert torch.equal(getattr(model, name).weight[:6], weight)
    assert model.id_tokenizer().item_token(6)  # the tokenizer knows the new item
    # ridge_map: with a vanishing penalty, an exact linear relation is recovered
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    w = rng.normal(size=(3, 2))
    np.testing.assert_allclose(ridge_map(x, x @ w + 1.0, x[:4], 1e-9), x[:4] @ w + 1.0, atol=1e-5)
    grow_item_tables(model, 2)
    assert model.item_collab.weight.shape[0] == 9 and not model.item_collab.weight[-2:].any()


def test_a_trained_run_ranks_cold_items_and_its_warm_scores_stay(tiny_run: Path, run_dataset) -> None:
    import dataclasses

    import scipy.sparse as sp

    from cllm4rec.data.cold import ColdItems
    from cllm4rec.evaluation.cold import evaluate_cold
    from cllm4rec.model.cold_recommender import NewItemsRecommender

    rng = np.random.default_rng(0)
    texts = [{"title": f"Movie {j}", "genres": "drama"} for j in range(6)]
    hits = sp.csr_matrix((rng.random((run_dataset.n_users, 6)) < 0.3).astype(np.float32))
    data = dataclasses.replace(run_dataset, cold=ColdItems([f"c{j}" for j in range(6)], texts, 3, hits))
    base = load_run(tiny_run, device="cpu").recommender
    base.dataset_hash = None  # the cold items change the content hash, not the warm data it was trained on
    users = np.arange(run_dataset.n_users)
    warm = base.fit(run_dataset, split="test").score(users, run_dataset.known("test"))
    cold = NewItemsRecommender(base, PlacementOptions(passes=1)).fit(data, split="test")
    result = evaluate_cold(cold, data, "test")
    assert result["cold"].metrics["n_users"] == int((np.diff(hits[:, 3:].tocsr().indptr) > 0).sum())
    assert 0 < result["cold"].metrics["recall@20"] <= 1 and cold.base.model.n_items == run_dataset.n_items + 3
    np.testing.assert_array_equal(cold.score(users, run_dataset.known("test")), warm)
    cold.restore()
    assert cold.base.model.n_items == run_dataset.n_items
    np.testing.assert_array_equal(base.score(users, run_dataset.known("test")), warm)


def test_train_on_a_dataset_with_cold_items_reports_their_rankings(tmp_path: Path, tiny_cli_args: list[str]) -> None:
    from cllm4rec.data import PrepareOptions, RawDataset, build_dataset

    rng = np.random.default_rng(1)
    users, items = [], []
    for u in range(40):
        for j in rng.choice(30, size=8, replace=False):
            users.append(f"u{u}")
            items.append(f"i{j}")
    text = {f"i{j}": {"title": f"{'red' if j % 2 else 'blue'} toy {j}"} for j in range(30)}
    data = build_dataset(RawDataset(users=users, items=items, item_text=text), PrepareOptions(cold_items=0.2))
    data.save(tmp_path / "data")
    code = main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), *tiny_cli_args])
    assert code == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["metrics_cold"]["n_users"] > 0 and 0 <= metrics["metrics_cold"]["recall@20"] <= 1
    assert metrics["metrics_all"]["n_users"] >= metrics["metrics"]["n_users"]
    assert "n_users" in metrics["few_interactions"]


def test_an_added_item_can_be_explained(run_copy: Path, tmp_path: Path) -> None:
    from cllm4rec.serving.explain import ExplainOptions, explain

    add_items(run_copy, _write(tmp_path / "new.jsonl", [{"id": "fresh", "title": "A fresh comedy"}]), device="cpu")
    loaded = load_run(run_copy, device="cpu")
    out = explain(loaded, loaded.catalog.user_ids[0], "fresh", ExplainOptions(max_new_tokens=4))
    assert out.item == "fresh" and isinstance(out.text, str)


def test_the_service_started_after_add_items_answers_for_them(run_copy: Path, tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from cllm4rec.serving.http import ServeOptions, create_app

    add_items(run_copy, _write(tmp_path / "new.jsonl", [{"id": "fresh", "title": "A fresh comedy"}]), device="cpu")
    loaded = load_run(run_copy, device="cpu")  # what `cllm4rec serve --run` loads at (re)start
    with TestClient(create_app(loaded, ServeOptions(api_key=""))) as client:
        body = client.post("/v1/recommend", json={"history": ["fresh"], "k": 3}).json()
        assert len(body["items"]) == 3 and all(r["item"] != "fresh" for r in body["items"])
        user = loaded.catalog.user_ids[0]
        n = loaded.catalog.n_items - len(loaded.catalog.known[0].indices)
        ranked = client.get("/v1/recommend", params={"user": user, "k": n}).json()["items"]
        assert "fresh" in {r["item"] for r in ranked}


def test_content_rows_can_start_at_their_texts_mean_word_embedding(tiny_backbone) -> None:
    from cllm4rec.model import CLLM4Rec
    from cllm4rec.model.new_items import init_content_from_text

    model = CLLM4Rec(tiny_backbone, 2, 3, seed=0)
    before = model.item_content.weight.detach().clone()
    init_content_from_text(model, [{"title": "red ball"}, {}, {"title": "blue car", "kind": "toy"}], [{}, {}], 16)
    ids = model.id_tokenizer().encode_text(" red ball")
    words = model.backbone.get_input_embeddings().weight
    torch.testing.assert_close(model.item_content.weight[0], words[torch.as_tensor(ids)].float().mean(0))
    assert torch.equal(model.item_content.weight[1], before[1])  # no text: the random start stays
    assert not torch.equal(model.item_content.weight[2], before[2])


def test_add_items_refuses_a_run_folder_another_writer_holds(run_copy: Path, tmp_path: Path) -> None:
    from cllm4rec.core.files import folder_lock

    items = _write(tmp_path / "new.jsonl", [{"id": "x1", "title": "Locked out"}])
    with folder_lock(run_copy, "run folder"), pytest.raises(CLLM4RecError, match="in use by another cllm4rec"):
        add_items(run_copy, items, device="cpu")
    assert not (run_copy / "items").exists()


def test_evaluate_reports_the_cold_rankings_of_a_dataset_with_cold_items(tmp_path: Path, tiny_cli_args, capsys) -> None:
    from cllm4rec.data import PrepareOptions, RawDataset, build_dataset

    rng = np.random.default_rng(2)
    users, items = [], []
    for u in range(30):
        for j in rng.choice(25, size=7, replace=False):
            users += [f"u{u}"]
            items += [f"i{j}"]
    text = {f"i{j}": {"title": f"{'green' if j % 3 else 'gold'} kite {j}"} for j in range(25)}
    build_dataset(RawDataset(users=users, items=items, item_text=text), PrepareOptions(cold_items=0.2)).save(
        tmp_path / "d"
    )
    assert main(["train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "r"), *tiny_cli_args]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--run", str(tmp_path / "r"), "--device", "cpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    trained = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert out["metrics_cold"] == trained["metrics_cold"] and out["metrics_all"] == trained["metrics_all"]
