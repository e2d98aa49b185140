"""The ASGI layer around every request: API key, body-size limit, metrics, one log line, and no tracebacks.

Order, outermost first: timing/metrics/logging and the last-resort 500 (a stack trace goes to the server log,
never to the client), then the API key (checked before any body is read), then the body limit (bodies are
read up to the limit and replayed to the app, so chunked uploads are bounded too).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cllm4rec.serving.http.auth import PUBLIC_PATHS, key_matches
from cllm4rec.serving.http.metrics import ServiceMetrics

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("cllm4rec.serve")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def error_body(status: int, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The one JSON shape of every error response."""
    error: dict[str, Any] = {"status": status, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


async def send_json_error(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps(error_body(status, message)).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app: Any, *, metrics: ServiceMetrics, api_key: str | None, max_body_bytes: int) -> None:
        self.app, self.metrics, self.api_key, self.max_body_bytes = app, metrics, api_key, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = {"status": 500, "started": False}

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
            await send(message)

        self.metrics.in_flight.inc()
        try:
            if self.api_key and scope["path"] not in PUBLIC_PATHS and not key_matches(self.api_key, scope):
                await send_json_error(
                    observed_send,
                    401,
                    "missing or wrong API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                    [(b"www-authenticate", b"Bearer")],
                )
            else:
                limited = await self._limit_body(scope, receive, observed_send)
                if limited is not None:
                    await self.app(scope, limited, observed_send)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not state["started"]:
                await send_json_error(observed_send, 500, "internal server error")
        finally:
            self.metrics.in_flight.dec()
            self._record(scope, state["status"], time.perf_counter() - started)

    async def _limit_body(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """A ``receive`` that replays the body read so far, or None after answering 413."""
        if scope.get("method") not in BODY_METHODS:
            return receive
        too_large = f"request body larger than {self.max_body_bytes} bytes"
        for key, value in scope.get("headers", ()):
            if key == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                await send_json_error(send, 413, too_large)
                return None
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # client disconnected
                return receive
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await send_json_error(send, 413, too_large)
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        return replayed

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        self.metrics.requests.labels(template, method, str(status)).inc()
        self.metrics.latency.labels(template).observe(seconds)
        client = scope.get("client") or ("-", 0)
        query = scope.get("query_string", b"").decode("latin-1")
        path = scope.get("path", "") + (f"?{query}" if query else "")
        log.info("%s %s %s %d %.1fms", client[0], method, path, status, seconds * 1000)
