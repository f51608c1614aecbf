"""The typed client's program attributes: what ``client.<program>`` does, for any program.

``client.py`` subclasses these per program with its models and path, and
adds only the typed signatures (the program's inputs as keyword arguments),
which pass the inputs on by name. The bodies live here, where no input name
can shadow a name they use. Imports httpx, httpx-sse and pydantic only.
"""

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from .client_core import AsyncTransport, Request, SyncTransport
from .client_errors import ServiceError
from .client_stream import AsyncStream, Stream

Q = TypeVar("Q", bound=Request)
R = TypeVar("R", bound=BaseModel)


class _Program(Generic[Q, R]):
    """A program's models and endpoint (set by each generated subclass)."""

    request_type: type[Q]
    response_type: type[R]
    path: str  # "/v1/<program>"

    def _body(self, inputs: dict[str, Any]) -> Q:
        """The request model of ``inputs``, checked by the server's rules before it is sent."""
        return self.request_type.model_validate(inputs)


class SyncProgram(_Program[Q, R]):
    """``client.<program>``: call it for the outputs, or ``.stream(...)``, ``.batch([...])``."""

    def __init__(self, transport: SyncTransport) -> None:
        self._transport = transport

    def _call(self, /, **inputs: Any) -> R:
        return self._transport.call(self.path, self._body(inputs), self.response_type)

    def _stream(self, /, **inputs: Any) -> Stream[R]:
        body = self._body(inputs)
        return self._transport.stream(f"{self.path}/stream", body, self.response_type)

    def batch(self, inputs: Sequence[Q]) -> list[R | ServiceError]:
        """Run the program on each input: each one's outputs or its error (not raised), in order."""
        return self._transport.batch(f"{self.path}/batch", inputs, self.response_type)


class AsyncProgram(_Program[Q, R]):
    """``client.<program>`` of the AsyncClient: await it, ``.stream(...)`` or ``.batch``."""

    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def _call(self, /, **inputs: Any) -> R:
        return await self._transport.call(self.path, self._body(inputs), self.response_type)

    def _stream(self, /, **inputs: Any) -> AsyncStream[R]:
        body = self._body(inputs)
        return self._transport.stream(f"{self.path}/stream", body, self.response_type)

    async def batch(self, inputs: Sequence[Q]) -> list[R | ServiceError]:
        """Run the program on each input: each one's outputs or its error (not raised), in order."""
        return await self._transport.batch(f"{self.path}/batch", inputs, self.response_type)
