"""API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, compared in constant time.

A middleware rather than a route dependency, so that it guards every path the
app serves (the OpenAPI page and unknown paths too), not only the routes. It
also names the caller, for per-caller limits: the key it presented, or (with
keys off) its address.
"""

import hmac
from contextvars import ContextVar

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import Failure
from .http import error_response

UNAUTHORIZED = Failure(401, "unauthorized", "A valid API key is required.")
_caller: ContextVar[str] = ContextVar("caller", default="")


def current_caller() -> str:
    """Who sent the request being served: ``key-<n>`` (the n-th API key), or an address."""
    return _caller.get()


class ApiKeyMiddleware:
    """Answer 401 to a request without an accepted key, unless its path is open."""

    def __init__(
        self,
        app: ASGIApp,
        keys: list[str],
        open_paths: list[str],
        open_prefixes: list[str] | None = None,
    ) -> None:
        self.app = app
        self._keys = [key.encode() for key in keys if key]
        self._open = frozenset(open_paths)
        self._open_prefixes = tuple(open_prefixes or ())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = self._key_of(dict(scope["headers"])) if self._keys else None
        if key is None and self._keys and not self._is_open(scope["path"]):
            response = error_response(UNAUTHORIZED, {"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        client = scope.get("client")
        token = _caller.set(
            f"key-{key}" if key is not None else (client[0] if client else "unknown")
        )
        try:
            await self.app(scope, receive, send)
        finally:
            _caller.reset(token)

    def _is_open(self, path: str) -> bool:
        return path in self._open or path.startswith(self._open_prefixes)

    def _key_of(self, headers: dict[bytes, bytes]) -> int | None:
        """The index of the key the request presents, or None."""
        given = headers.get(b"x-api-key", b"")
        authorization = headers.get(b"authorization", b"")
        if authorization[:7].lower() == b"bearer ":
            given = authorization[7:].strip()
        # Compare with every key, so the time taken says nothing about which matched.
        matched = None
        for index, key in enumerate(self._keys):
            if hmac.compare_digest(given, key):
                matched = index
        return matched
