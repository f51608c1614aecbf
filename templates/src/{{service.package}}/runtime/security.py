"""API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, compared in constant time.

A middleware rather than a route dependency, so that it guards every path the
app serves (the OpenAPI page and unknown paths too), not only the routes.
"""

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import Failure
from .http import error_response

UNAUTHORIZED = Failure(401, "unauthorized", "A valid API key is required.")


class ApiKeyMiddleware:
    """Answer 401 to a request without an accepted key, unless its path is open."""

    def __init__(self, app: ASGIApp, keys: list[str], open_paths: list[str]) -> None:
        self.app = app
        self._keys = [key.encode() for key in keys if key]
        self._open = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._keys or scope["path"] in self._open:
            await self.app(scope, receive, send)
            return
        if self._accepts(dict(scope["headers"])):
            await self.app(scope, receive, send)
            return
        response = error_response(UNAUTHORIZED, {"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)

    def _accepts(self, headers: dict[bytes, bytes]) -> bool:
        given = headers.get(b"x-api-key", b"")
        authorization = headers.get(b"authorization", b"")
        if authorization[:7].lower() == b"bearer ":
            given = authorization[7:].strip()
        # Compare with every key, so the time taken says nothing about which matched.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(given, key)
        return matched
