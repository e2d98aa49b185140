"""The service under hostile input (issue 19, items 9, 10, 12, 13): forged log lines, huge IDs, HEAD and
405, what /metrics counts, docs without the internet, and explanations for clients that went away."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from cllm4rec.serving.explain import ExplainOptions, explain  # noqa: E402
from cllm4rec.serving.http import ServeOptions, create_app  # noqa: E402
from cllm4rec.serving.http import app as app_module  # noqa: E402
from cllm4rec.serving.http.guard import printable  # noqa: E402

OPEN = ServeOptions(api_key="")
KEY = "k3y"


@pytest.fixture()
def client(tiny_loaded) -> Iterator[TestClient]:
    with TestClient(create_app(tiny_loaded, OPEN)) as c:
        yield c


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "cllm4rec.serve"]


# ----- 9. log forging and echoed values ------------------------------------------------------------------
def test_encoded_control_characters_cannot_forge_log_lines(client: TestClient, caplog) -> None:
    forged = "x%0A2026-01-01 00:00:00,000 INFO cllm4rec.serve: 10.0.0.1 GET admin 200 FORGED"
    with caplog.at_level(logging.INFO, logger="cllm4rec.serve"):
        response = client.get(f"/v1/items/{forged}")
        client.get("/v1/items/a%00b%1b[31mred")
        client.get("/v1/users/u%E2%80%A8x")  # U+2028, a line break to some log viewers
    assert response.status_code == 404
    lines = _lines(caplog)
    assert len(lines) == 3
    for line in lines:
        assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029" for c in line), line
    assert "x\\x0a2026-01-01" in lines[0] and "a\\x00b\\x1b[31mred" in lines[1] and "u\\u2028x" in lines[2]
    message = response.json()["error"]["message"]
    assert "\n" not in message and "\\x0a" in message


def test_huge_ids_are_capped_in_logs_and_errors(client: TestClient, caplog) -> None:
    huge = "A" * 5000
    with caplog.at_level(logging.INFO, logger="cllm4rec.serve"):
        item = client.get(f"/v1/items/{huge}")
        user = client.get(f"/v1/users/{huge}")
        history = client.post("/v1/recommend", json={"history": [huge]})
    for response in (item, user, history):
        assert response.status_code == 404 and len(response.text) < 400, response.text
        assert "(+4936 chars)" in response.text
    assert all(len(line) < 800 for line in _lines(caplog))


def test_a_posted_key_name_is_escaped_and_capped_in_a_422(client: TestClient) -> None:
    response = client.post("/v1/recommend", json={"history": ["i1"], "x\nFORGED" + "y" * 200: 1})
    assert response.status_code == 422
    error = response.json()["error"]
    echoed = [part for detail in error["details"] for part in detail["loc"]] + [error["message"]]
    assert not any("\n" in part for part in echoed) and any(p.startswith("x\\x0aFORGED") for p in echoed)
    assert len(response.text) < 800


def test_printable_escapes_the_backslash_too() -> None:
    """Otherwise a literal ``\\x0a`` sent by a client would read as an escaped newline."""
    assert printable("a\\x0a\n", 100) == "a\\\\x0a\\x0a" and printable("abcdef", 3) == "abc...(+3 chars)"


# ----- 13. HEAD, 405, /metrics, "and N more" ---------------------------------------------------------------
def test_head_is_answered_wherever_get_is(client: TestClient) -> None:
    for path in ("/health", "/v1/users", "/v1/recommend?user=u1&k=2", "/", "/metrics", "/static/app.js"):
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"], path
    assert client.head("/v1/items/nope").status_code == 404


def test_405_names_every_method_of_the_path(client: TestClient) -> None:
    response = client.put("/v1/recommend", json={})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, POST"
    assert "takes GET, HEAD, POST" in response.json()["error"]["message"]
    assert client.delete("/v1/users").headers["allow"] == "GET, HEAD"


def test_metrics_count_every_route_even_when_answered_before_routing(tiny_loaded) -> None:
    with TestClient(create_app(tiny_loaded, ServeOptions(api_key="", max_body_bytes=100))) as c:
        for path in ("/docs", "/openapi.json", "/static/app.js"):
            assert c.get(path).status_code == 200
        body, json_type = b"x" * 500, {"content-type": "application/json"}
        assert c.post("/v1/recommend", content=body, headers=json_type).status_code == 413
        c.get("/no/such/route")
        text = c.get("/metrics").text
    for method, route, status in (
        ("GET", "/docs", 200),
        ("GET", "/openapi.json", 200),
        ("GET", "/static/{path}", 200),
        ("POST", "/v1/recommend", 413),
    ):
        assert f'requests_total{{method="{method}",route="{route}",status="{status}"}} 1.0' in text, route
    assert 'route="unmatched",status="404"' in text
    with TestClient(create_app(tiny_loaded, ServeOptions(api_key=KEY))) as c:
        assert c.get("/v1/users").status_code == 401
        assert 'route="/v1/users",status="401"' in c.get("/metrics", headers={"X-API-Key": KEY}).text


def test_unknown_history_items_say_how_many_more(client: TestClient) -> None:
    response = client.post("/v1/recommend", json={"history": [f"nope{i}" for i in range(8)] + ["i1"]})
    message = response.json()["error"]["message"]
    assert response.status_code == 404 and "'nope4' and 3 more" in message and "nope5" not in message
    few = client.post("/v1/recommend", json={"history": ["nope0", "i1"]}).json()["error"]["message"]
    assert "more" not in few


# ----- 12. /docs without the internet, with the key --------------------------------------------------------
@pytest.mark.parametrize("api_key", ["", KEY])
def test_docs_are_served_locally(tiny_loaded, api_key: str) -> None:
    with TestClient(create_app(tiny_loaded, ServeOptions(api_key=api_key))) as c:
        page = c.get("/docs")
        assert page.status_code == 200
        assert "cdn" not in page.text.lower() and "//" not in page.text.replace("http://", "").replace("https://", "")
        assert "/docs-assets/swagger-ui-bundle.js" in page.text and "/docs-assets/swagger-ui.css" in page.text
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
            assert c.get(f"/docs-assets/{asset}").status_code == 200  # no key needed for the docs themselves
        schema = c.get("/openapi.json").json()
        if api_key:  # the docs page's Authorize button sends the key with every "try it out"
            assert schema["components"]["securitySchemes"]["apiKey"] == {
                "type": "apiKey",
                "in": "header",
                "name": "X-API-Key",
            }
            assert c.get("/v1/users").status_code == 401
        assert "/redoc" not in [r.path for r in c.app.routes]


# ----- 10. explanations stop when the client goes away -----------------------------------------------------
def test_explain_stops_at_once_when_cancelled(tiny_loaded) -> None:
    cancel = threading.Event()
    cancel.set()
    result = explain(tiny_loaded, "u3", "i7", ExplainOptions(max_new_tokens=200), cancel=cancel)
    assert result.stopped == "cancelled" and result.new_tokens <= 1


def test_explain_route_stops_generating_when_the_client_disconnects(tiny_loaded, monkeypatch) -> None:
    generating = threading.Event()
    seen: dict[str, bool] = {}

    def slow_explain(loaded, user, item, options, *, dataset=None, cancel=None):
        generating.set()
        seen["cancelled"] = cancel.wait(60)  # true once the route saw the client go: it did not wait 60 s
        return explain(loaded, user, item, options, dataset=dataset, cancel=cancel)

    monkeypatch.setattr(app_module, "explain", slow_explain)
    app = create_app(tiny_loaded, OPEN)
    sent: list[dict] = []

    async def call() -> None:
        async def receive() -> dict:  # as a server's: the disconnect at once once it happened, else wait for it
            if not generating.is_set():  # the client hangs up once the explanation is being generated
                await asyncio.get_running_loop().run_in_executor(None, generating.wait, 60)
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/v1/explain",
            "raw_path": b"/v1/explain",
            "root_path": "",
            "query_string": b"user=u3&item=i7&max_tokens=100",
            "headers": [(b"host", b"testserver")],
            "client": ("127.0.0.1", 1),
            "server": ("testserver", 80),
        }
        await app(scope, receive, send)

    with TestClient(app) as c:  # runs the lifespan (the explanation thread)
        c.portal.call(call)
    assert generating.is_set() and seen["cancelled"]
    assert sent[0]["status"] == 499
