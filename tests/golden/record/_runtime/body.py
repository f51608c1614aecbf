"""Caps on the request body, enforced while it is read, before any handler runs."""

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import Failure
from .http import error_response

TOO_LARGE = "payload_too_large"
BODY_TIMEOUT = Failure(408, "request_timeout", "The request body did not arrive in time.")


class BodySizeLimit:
    """Answer 413 to a body over ``max_bytes``, 408 to one that takes over ``timeout`` seconds.

    The body is read here in full (it is JSON, parsed whole by the handler anyway)
    and replayed to the app, so a chunked body with no Content-Length is refused
    with 413 too, instead of failing later inside the handler's body parser; and
    a client that announces 100 bytes and sends 11 cannot hold a connection open.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        body: list[bytes] = []
        received = 0
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":  # the client left while sending
                        return
                    chunk = message.get("body", b"")
                    received += len(chunk)
                    if received > self.max_bytes:
                        await self._refuse(scope, receive, send)
                        return
                    body.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            await error_response(BODY_TIMEOUT, {"Connection": "close"})(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(body), "more_body": False}
            return await receive()  # after the body: wait for the client to disconnect

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        failure = Failure(413, TOO_LARGE, f"The request body is over {self.max_bytes} bytes.")
        await error_response(failure)(scope, receive, send)
