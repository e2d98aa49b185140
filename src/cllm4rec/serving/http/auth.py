"""Optional API key: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, compared in constant time."""

from __future__ import annotations

import hmac

API_KEY_ENV = "CLLM4REC_API_KEY"
PUBLIC_PATHS = frozenset({"/health", "/", "/docs", "/openapi.json"})
"""What needs no key: liveness, the page and the API docs (they hold no data, and are where a key is entered)."""
PUBLIC_PREFIXES = ("/static/", "/docs-assets/")


def is_public(path: str) -> bool:
    """Whether ``path`` is served without the key."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _header(scope: dict, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value
    return None


def presented_key(scope: dict) -> bytes | None:
    """The key a request presents, from either header (Authorization wins when both are sent)."""
    auth = _header(scope, b"authorization")
    if auth is not None:
        scheme, _, token = auth.partition(b" ")
        if scheme.lower() == b"bearer" and token.strip():
            return token.strip()
    return _header(scope, b"x-api-key")


def key_matches(expected: str, scope: dict) -> bool:
    """Whether the request carries ``expected``; ``hmac.compare_digest`` so timing does not leak the key."""
    given = presented_key(scope)
    return given is not None and hmac.compare_digest(given, expected.encode("utf-8"))
