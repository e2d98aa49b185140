"""The HTTP service on a tiny trained run: every route, every error class, the API key, and CLI agreement."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from cllm4rec.cli.main import main  # noqa: E402
from cllm4rec.core.errors import CLLM4RecError  # noqa: E402
from cllm4rec.runs.catalog import Catalog  # noqa: E402
from cllm4rec.serving import Query, recommend  # noqa: E402
from cllm4rec.serving.explain import ExplainOptions, explain  # noqa: E402
from cllm4rec.serving.http import ServeOptions, create_app  # noqa: E402

OPEN = ServeOptions(api_key="")


@pytest.fixture()
def client(tiny_loaded) -> Iterator[TestClient]:
    with TestClient(create_app(tiny_loaded, OPEN)) as c:
        yield c


def _error(response, status: int) -> str:
    """The message of a JSON error response, after checking its status and shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"]["status"] == status
    assert "Traceback" not in response.text
    return body["error"]["message"]


def _seen(loaded, user: str) -> set[str]:
    """External IDs of everything the run's catalogue knows ``user`` interacted with."""
    catalog = loaded.catalog
    row = catalog.known[catalog.user_index[user]]
    return {catalog.item_ids[j] for j in row.indices}


def _top(loaded, k: int, **query) -> list[str]:
    return [r.item for r in recommend(loaded, [Query(**query)], k=k)[0]]


def _cli_json(capsys, *args: str):
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


# ----- recommendations ------------------------------------------------------------------------------------
def test_get_recommend_equals_cli_recommend(client: TestClient, tiny_run: Path, capsys) -> None:
    response = client.get("/v1/recommend", params={"user": "u3", "k": 7})
    assert response.status_code == 200
    body = response.json()
    assert body["user"] == "u3" and body["k"] == 7
    cli = _cli_json(capsys, "recommend", "--run", str(tiny_run), "--user", "u3", "-k", "7", "--json", "--device", "cpu")
    assert [r["item"] for r in body["items"]] == [r["item"] for r in cli]
    assert [r["rank"] for r in body["items"]] == list(range(1, 8))
    assert [r["score"] for r in body["items"]] == pytest.approx([r["score"] for r in cli], rel=1e-6, abs=1e-6)
    assert [r["title"] for r in body["items"]] == [r["title"] for r in cli]


def test_seen_items_are_excluded(client: TestClient, tiny_loaded) -> None:
    seen = _seen(tiny_loaded, "u5")
    n_unseen = tiny_loaded.catalog.n_items - len(seen)
    body = client.get("/v1/recommend", params={"user": "u5", "k": n_unseen}).json()
    assert len(body["items"]) == n_unseen
    assert not seen & {r["item"] for r in body["items"]}


def test_post_history_equals_cli_history(client: TestClient, tiny_run: Path, capsys) -> None:
    response = client.post("/v1/recommend", json={"history": ["i1", "i4", "i4", "i9"], "k": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["user"] is None and len(body["items"]) == 5
    assert not {"i1", "i4", "i9"} & {r["item"] for r in body["items"]}
    cli = _cli_json(
        capsys, "recommend", "--run", str(tiny_run), "--history", "i1,i4,i4,i9", "-k", "5", "--json", "--device", "cpu"
    )
    assert [r["item"] for r in body["items"]] == [r["item"] for r in cli]
    assert client.post("/v1/recommend", json={"history": ["i1"]}).json()["k"] == 10  # default k


def test_numeric_ids_are_accepted_as_json_numbers(tiny_loaded) -> None:
    """Datasets with numeric external IDs (MovieLens): ids may be sent as JSON numbers or strings."""
    catalog = tiny_loaded.catalog
    numeric = Catalog(
        user_ids=[str(100 + u) for u in range(catalog.n_users)],
        item_ids=[str(500 + j) for j in range(catalog.n_items)],
        titles=catalog.titles,
        known=catalog.known,
    )
    loaded = dataclasses.replace(tiny_loaded, record=dataclasses.replace(tiny_loaded.record, catalog=numeric))
    with TestClient(create_app(loaded, OPEN, dataset=tiny_loaded.dataset())) as c:
        as_numbers = c.post("/v1/recommend", json={"history": [501, 504], "k": 4}).json()
        as_strings = c.post("/v1/recommend", json={"history": ["501", "504"], "k": 4}).json()
        assert as_numbers == as_strings
        assert [r["item"] for r in as_numbers["items"]] == _top(loaded, 4, history=("501", "504"))
        assert c.get("/v1/recommend", params={"user": 103, "k": 3}).status_code == 200
        assert c.get("/v1/items/507").json()["item"] == "507"
        # a float or a boolean is not an ID
        _error(c.post("/v1/recommend", json={"history": [501.0]}), 422)
        _error(c.post("/v1/recommend", json={"history": [True]}), 422)


def test_concurrent_requests_are_micro_batched(tiny_loaded) -> None:
    users = [f"u{i}" for i in range(16)]
    expected = {u: _top(tiny_loaded, 5, user=u) for u in users}
    options = dataclasses.replace(OPEN, max_wait_ms=200.0, max_batch=8)
    with TestClient(create_app(tiny_loaded, options)) as c:
        with ThreadPoolExecutor(16) as pool:
            responses = list(pool.map(lambda u: c.get("/v1/recommend", params={"user": u, "k": 5}), users))
        for u, response in zip(users, responses, strict=True):
            assert response.status_code == 200
            assert [r["item"] for r in response.json()["items"]] == expected[u]
        metrics = c.get("/metrics").text
    count = _sample(metrics, "cllm4rec_batch_size_count")
    assert _sample(metrics, "cllm4rec_batch_size_sum") == 16
    assert count < 16  # some requests shared a forward pass
    assert _sample(metrics, 'cllm4rec_batch_size_bucket{le="8.0"}') == count  # never more than max_batch


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in metrics")


# ----- catalogue, health, metrics, page --------------------------------------------------------------------
def test_item_users_health_metrics(client: TestClient, tiny_loaded) -> None:
    ds = tiny_loaded.dataset()
    item = client.get("/v1/items/i3").json()
    assert item["title"] == "Movie 3" and item["text"] == ds.item_text[3]
    assert item["n_users"] == int((ds.train + ds.valid + ds.test)[:, 3].sum())
    users = client.get("/v1/users", params={"offset": 2, "limit": 3}).json()
    assert users == {"total": ds.n_users, "offset": 2, "users": ["u2", "u3", "u4"]}
    profile = client.get("/v1/users/u3").json()
    assert {h["item"] for h in profile["history"]} == _seen(tiny_loaded, "u3")
    assert profile["n_history"] == len(profile["history"]) and all(h["title"] for h in profile["history"])
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model_loaded"] is True
    assert (health["n_users"], health["n_items"]) == (ds.n_users, ds.n_items)
    assert health["backbone"]["name"] == "tiny-llama" and health["run_id"] == "run"
    assert health["texts"] is True and health["reviews"] is True
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'cllm4rec_requests_total{method="GET",route="/v1/items/{item_id}",status="200"} 1.0' in text
    assert 'cllm4rec_request_duration_seconds_bucket{le="+Inf",route="/health"} 1.0' in text
    assert "cllm4rec_batch_size_bucket" in text
    assert client.get("/openapi.json").json()["paths"].keys() >= {
        "/v1/recommend",
        "/v1/items/{item_id}",
        "/v1/explain",
        "/health",
        "/metrics",
    }
    assert client.get("/docs").status_code == 200


def test_page_is_self_contained(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="/static/app.js"' in page.text and 'href="/static/style.css"' in page.text
    for path in ("/static/app.js", "/static/style.css"):
        asset = client.get(path)
        assert asset.status_code == 200
        assert "http://" not in asset.text and "https://" not in asset.text  # nothing fetched from elsewhere
    assert "http://" not in page.text and "https://" not in page.text


# ----- errors ----------------------------------------------------------------------------------------------
def test_error_classes(tiny_loaded) -> None:
    n_unseen = tiny_loaded.catalog.n_items - len(_seen(tiny_loaded, "u3"))
    options = dataclasses.replace(OPEN, max_history=5, max_body_bytes=2000)
    with TestClient(create_app(tiny_loaded, options)) as c:
        assert "unknown user 'nobody'" in _error(c.get("/v1/recommend", params={"user": "nobody"}), 404)
        assert "'i999'" in _error(c.post("/v1/recommend", json={"history": ["i1", "i999"]}), 404)
        assert "unknown item" in _error(c.get("/v1/items/i999"), 404)
        assert "unknown user" in _error(c.get("/v1/users/nobody"), 404)
        assert "unknown user" in _error(c.get("/v1/explain", params={"user": "x", "item": "i1"}), 404)
        assert "unknown item" in _error(c.get("/v1/explain", params={"user": "u1", "item": "x"}), 404)
        _error(c.get("/v1/nothing"), 404)
        _error(c.delete("/v1/recommend"), 405)
        # bad k
        assert "positive" in _error(c.get("/v1/recommend", params={"user": "u3", "k": 0}), 422)
        assert "k: " in _error(c.get("/v1/recommend", params={"user": "u3", "k": "ten"}), 422)
        assert "larger than allowed" in _error(c.get("/v1/recommend", params={"user": "u3", "k": 10**6}), 422)
        message = _error(c.get("/v1/recommend", params={"user": "u3", "k": n_unseen + 1}), 422)
        assert f"the {n_unseen} items" in message
        _error(c.post("/v1/recommend", json={"history": ["i1"], "k": -1}), 422)
        _error(c.post("/v1/recommend", json={"history": ["i1"], "k": "5"}), 422)
        # missing or malformed input
        _error(c.get("/v1/recommend"), 422)
        _error(c.post("/v1/recommend", json={"history": []}), 422)
        _error(c.post("/v1/recommend", json={"k": 3}), 422)
        _error(c.post("/v1/recommend", json={"history": ["i1"], "extra": 1}), 422)
        _error(c.post("/v1/recommend", content=b"{not json", headers={"content-type": "application/json"}), 422)
        _error(c.post("/v1/recommend", json={"history": [["i1"]]}), 422)
        # oversized history (422) and oversized bodies (413), with and without a Content-Length
        assert "at most 5" in _error(c.post("/v1/recommend", json={"history": [f"i{j}" for j in range(6)]}), 422)
        big = json.dumps({"history": ["i1"] * 400}).encode()
        assert "larger than 2000 bytes" in _error(c.post("/v1/recommend", content=big), 413)
        chunked = c.post("/v1/recommend", content=iter([big[:1000], big[1000:]]))
        assert "content-length" not in {k.lower() for k in chunked.request.headers}
        _error(chunked, 413)
        # explanation options
        _error(c.get("/v1/explain", params={"user": "u1", "item": "i1", "max_tokens": 1000}), 422)
        _error(c.get("/v1/explain", params={"user": "u1", "item": "i1", "max_tokens": 200}), 422)  # > server cap
        _error(c.get("/v1/explain", params={"user": "u1", "item": "i1", "temperature": -1}), 422)
        # a request that fits still works after all this
        assert c.post("/v1/recommend", json={"history": ["i1", "i2"], "k": 3}).status_code == 200


def test_internal_errors_never_leak(tiny_loaded, caplog) -> None:
    app = create_app(tiny_loaded, OPEN)
    service = app.state.service

    def broken(key, payloads):
        raise RuntimeError("secret internal detail")

    service.batcher.fn = broken
    with TestClient(app) as c, caplog.at_level(logging.ERROR, logger="cllm4rec.serve"):
        response = c.get("/v1/recommend", params={"user": "u1"})
        message = _error(response, 500)
    assert message == "internal server error" and "secret" not in response.text
    assert any("secret internal detail" in (r.exc_text or "") for r in caplog.records)  # the log has it


def test_one_log_line_per_request(client: TestClient, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="cllm4rec.serve"):
        client.get("/v1/recommend", params={"user": "u2", "k": 3})
        client.get("/v1/items/nope")
    lines = [r.getMessage() for r in caplog.records if r.name == "cllm4rec.serve"]
    assert len(lines) == 2
    assert "GET /v1/recommend?user=u2&k=3 200" in lines[0] and "GET /v1/items/nope 404" in lines[1]


# ----- API key ---------------------------------------------------------------------------------------------
def test_api_key_from_environment(tiny_loaded, monkeypatch) -> None:
    monkeypatch.setenv("CLLM4REC_API_KEY", "s3cret-key")
    with TestClient(create_app(tiny_loaded, ServeOptions())) as c:
        assert c.get("/health").status_code == 200  # always open
        for path in ("/", "/docs", "/openapi.json", "/static/app.js"):  # no data, and where the key is entered
            assert c.get(path).status_code == 200, path
        for path in ("/v1/recommend?user=u1", "/v1/items/i1", "/v1/users", "/metrics", "/nothing"):
            assert "API key" in _error(c.get(path), 401)
            _error(c.get(path, headers={"X-API-Key": "wrong"}), 401)
            _error(c.get(path, headers={"Authorization": "Bearer s3cret-keyX"}), 401)
            _error(c.get(path, headers={"Authorization": "Basic s3cret-key"}), 401)
        assert c.get("/v1/recommend?user=u1", headers={"Authorization": "Bearer s3cret-key"}).status_code == 200
        assert c.get("/v1/recommend?user=u1", headers={"X-API-Key": "s3cret-key"}).status_code == 200
        _error(c.post("/v1/recommend", json={"history": ["i1"]}), 401)
        ok = c.post("/v1/recommend", json={"history": ["i1"]}, headers={"X-API-Key": "s3cret-key"})
        assert ok.status_code == 200
        assert c.get("/nothing", headers={"X-API-Key": "s3cret-key"}).status_code == 404
    monkeypatch.setenv("CLLM4REC_API_KEY", "")
    with TestClient(create_app(tiny_loaded, ServeOptions())) as c:  # empty = off
        assert c.get("/v1/recommend?user=u1").status_code == 200


# ----- explanations ----------------------------------------------------------------------------------------
def test_explain_route_is_deterministic_and_matches_library(client: TestClient, tiny_loaded) -> None:
    params = {"user": "u3", "item": "i7", "max_tokens": 12}
    first = client.get("/v1/explain", params=params)
    assert first.status_code == 200
    body = first.json()
    assert body == {**client.get("/v1/explain", params=params).json(), "seconds": body["seconds"]}
    assert body["template"] == "review" and body["note"] is None and body["greedy"] is True
    assert body["prompt"] == "user_3 wrote the following review for item_7:"
    assert 1 <= body["new_tokens"] <= 12 and body["stopped"] in ("eos", "max_tokens")
    direct = explain(tiny_loaded, "u3", "i7", ExplainOptions(max_new_tokens=12))
    assert body["text"] == direct.text and body["new_tokens"] == direct.new_tokens
    sampled = [
        client.get("/v1/explain", params={**params, "temperature": 1.5, "seed": s}).json()["text"] for s in (1, 1, 2)
    ]
    assert sampled[0] == sampled[1]  # same seed, same text


def test_explain_without_reviews_uses_item_text(tiny_loaded) -> None:
    ds = tiny_loaded.dataset()
    no_reviews = dataclasses.replace(ds, reviews=[])
    result = explain(tiny_loaded, "u3", "i7", ExplainOptions(max_new_tokens=5), dataset=no_reviews)
    assert result.template == "item_text" and result.prompt == "The genres of item_7 is:"
    assert "no reviews" in result.note
    with TestClient(create_app(tiny_loaded, OPEN, dataset=no_reviews)) as c:
        body = c.get("/v1/explain", params={"user": "u3", "item": "i7", "max_tokens": 5}).json()
        assert body["text"] == result.text and body["template"] == "item_text" and "no reviews" in body["note"]
    bare = dataclasses.replace(ds, reviews=[], item_text=[{} for _ in ds.item_ids])
    with pytest.raises(CLLM4RecError, match="neither reviews nor item texts"):
        explain(tiny_loaded, "u3", "i7", dataset=bare)


def test_without_the_dataset_folder_recommendations_still_work(tiny_run: Path, tmp_path: Path) -> None:
    """A run copied away from its dataset serves from its own catalogue; texts and explanations say why not."""
    import shutil

    from cllm4rec.serving import load_run

    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    loaded = load_run(copy, device="cpu")
    loaded.record = dataclasses.replace(
        loaded.record, dataset=dataclasses.replace(loaded.record.dataset, path=str(tmp_path / "gone"))
    )
    with TestClient(create_app(loaded, OPEN)) as c:
        assert c.get("/health").json()["texts"] is False
        assert c.get("/v1/recommend", params={"user": "u1", "k": 3}).status_code == 200
        assert c.get("/v1/items/i1").json()["text"] == {}
        assert "dataset" in _error(c.get("/v1/explain", params={"user": "u1", "item": "i1"}), 503)


def test_explain_time_bound(tiny_loaded) -> None:
    result = explain(tiny_loaded, "u1", "i2", ExplainOptions(max_new_tokens=256, max_time=1e-6))
    assert result.stopped == "time" and result.new_tokens < 256


def test_explain_cli_matches_api(client: TestClient, tiny_run: Path, capsys) -> None:
    api = client.get("/v1/explain", params={"user": "u2", "item": "i5", "max_tokens": 10}).json()
    args = ("explain", "--run", str(tiny_run), "--user", "u2", "--item", "i5", "--max-tokens", "10", "--device", "cpu")
    cli = _cli_json(capsys, *args, "--json")
    assert cli["text"] == api["text"] and cli["prompt"] == api["prompt"]
    assert main(list(args)) == 0
    assert "user_2 wrote the following review for item_5:" in capsys.readouterr().out
    assert main([*args, "--max-tokens", "0"]) == 2
    assert "max_new_tokens" in capsys.readouterr().err
    assert main(["explain", "--run", str(tiny_run), "--user", "nobody", "--item", "i5", "--device", "cpu"]) == 2
    assert "unknown user" in capsys.readouterr().err
