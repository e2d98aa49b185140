"""The ASGI layer around every request: API key, body-size limit, metrics, one log line, and no tracebacks.

Order, outermost first: timing/metrics/logging and the last-resort 500 (a stack trace goes to the server log,
never to the client), then the API key (checked before any body is read), then the body limit (bodies are
read up to the limit and replayed to the app, so chunked uploads are bounded too).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.routing import Match, Mount

from cllm4rec.serving.http.auth import is_public, key_matches
from cllm4rec.serving.http.metrics import ServiceMetrics

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("cllm4rec.serve")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LOGGED_PATH_CHARS = 512
"""Longest request target (path and query) a log line carries; the rest is counted, not written."""
ECHOED_CHARS = 64
"""Longest client-supplied value an error message repeats back."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\\]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return "\\\\" if code == 0x5C else f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: str, limit: int) -> str:
    """``value`` safe for a log line or an error message: every control character (newline, NUL, escape...)
    and the backslash written as an escape, so nothing can start a forged line; at most ``limit`` characters
    of it, then how many more there were."""
    text = _CONTROL.sub(_escape, value[:limit])
    if len(value) > limit:
        text += f"...(+{len(value) - limit} chars)"
    return text


def shown(value: object) -> str:
    """A client-supplied ID as an error message quotes it: escaped, capped, in quotes."""
    return "'" + printable(str(value), ECHOED_CHARS) + "'"


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


def route_template(routes: Sequence[Any], scope: Scope) -> str:
    """The route a request is for, as a metrics label: its path template (``/static/{path}`` for a mount),
    found by matching the app's routes before the app runs, so requests answered before routing (401, 413)
    and mounts count under their route; ``unmatched`` only for a path no route serves."""
    for route in routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE and getattr(route, "path", None):
            return f"{route.path}/{{path}}" if isinstance(route, Mount) else route.path
    return "unmatched"


class Guard:
    """ASGI middleware: see the module docstring."""

    def __init__(
        self,
        app: Any,
        *,
        metrics: ServiceMetrics,
        api_key: str | None,
        max_body_bytes: int,
        routes: Callable[[], Sequence[Any]] = list,
    ) -> None:
        self.app, self.metrics, self.api_key, self.max_body_bytes = app, metrics, api_key, max_body_bytes
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = {"status": 500, "started": False}
        method = scope.get("method", "")
        if method == "HEAD":  # every GET route answers HEAD: the same status and headers, no body
            scope = {**scope, "method": "GET"}
        template = route_template(self.routes(), dict(scope))

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
            elif method == "HEAD" and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        self.metrics.in_flight.inc()
        try:
            if self.api_key and not is_public(scope["path"]) and not key_matches(self.api_key, scope):
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
            log.exception("unhandled error on %s %s", method, printable(scope.get("path", ""), LOGGED_PATH_CHARS))
            if not state["started"]:
                await send_json_error(observed_send, 500, "internal server error")
        finally:
            self.metrics.in_flight.dec()
            self._record(scope, template, method, state["status"], time.perf_counter() - started)

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

    def _record(self, scope: Scope, template: str, method: str, status: int, seconds: float) -> None:
        method = method if method in KNOWN_METHODS else "other"  # a label per made-up method would grow forever
        self.metrics.requests.labels(template, method, str(status)).inc()
        self.metrics.latency.labels(template).observe(seconds)
        client = scope.get("client") or ("-", 0)
        query = scope.get("query_string", b"").decode("latin-1")
        path = printable(scope.get("path", "") + (f"?{query}" if query else ""), LOGGED_PATH_CHARS)
        log.info("%s %s %s %d %.1fms", client[0], method, path, status, seconds * 1000)
