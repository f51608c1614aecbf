"""API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, compared in constant time."""

import hmac

from fastapi import Request

from .errors import ApiError, Failure

UNAUTHORIZED = Failure(401, "unauthorized", "A valid API key is required.")


class ApiKeys:
    """The accepted keys, and the paths that need none."""

    def __init__(self, keys: list[str], open_paths: list[str]) -> None:
        self._keys = [key.encode() for key in keys if key]
        self._open = frozenset(open_paths)

    @property
    def enabled(self) -> bool:
        """Whether any key is configured; with none, every request is let in."""
        return bool(self._keys)

    def check(self, request: Request) -> None:
        """Raise a 401 :class:`ApiError` unless the request may pass."""
        if not self._keys or request.url.path in self._open:
            return
        given = request.headers.get("x-api-key", "")
        authorization = request.headers.get("authorization", "")
        if authorization[:7].lower() == "bearer ":
            given = authorization[7:].strip()
        candidate = given.encode()
        # Compare with every key, so the time taken says nothing about which matched.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(candidate, key)
        if not matched:
            raise ApiError(UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
