"""A typed client of this service: a method per program, sync and async, streams that resume.

It imports httpx, httpx-sse and pydantic, none of the server's dependencies.
The request and response models are those of schemas.py, made from the same
fields (DSPy's ``Image`` and ``History`` travel as their JSON objects here);
the protocol underneath is in the README and ``runtime/client_core.py``.
"""

from pydantic import Field

from .runtime.client_core import AsyncClientBase, ClientBase
from .runtime.client_core import Request as Request
from .runtime.client_core import Response as Response
from .runtime.client_errors import ConnectionLost as ConnectionLost
from .runtime.client_errors import ContextWindowExceeded as ContextWindowExceeded
from .runtime.client_errors import InternalError as InternalError
from .runtime.client_errors import NotFound as NotFound
from .runtime.client_errors import ResumeExpired as ResumeExpired
from .runtime.client_errors import RunCancelled as RunCancelled
from .runtime.client_errors import RunLost as RunLost
from .runtime.client_errors import RunNotFound as RunNotFound
from .runtime.client_errors import ServiceError as ServiceError
from .runtime.client_errors import Timeout as Timeout
from .runtime.client_errors import TooManyRequests as TooManyRequests
from .runtime.client_errors import Unauthorized as Unauthorized
from .runtime.client_errors import Unavailable as Unavailable
from .runtime.client_errors import UpstreamFailed as UpstreamFailed
from .runtime.client_errors import ValidationFailed as ValidationFailed
from .runtime.client_programs import AsyncProgram, SyncProgram
from .runtime.client_stream import AsyncStream as AsyncStream
from .runtime.client_stream import Done as Done
from .runtime.client_stream import Error as Error
from .runtime.client_stream import Prediction as Prediction
from .runtime.client_stream import Status as Status
from .runtime.client_stream import Stream as Stream
from .runtime.client_stream import Token as Token


class CitedRequest(Request):
    """Inputs of the cited program."""

    question: str = Field(
        description="The question to answer.",
    )


class CitedResponse(Response):
    """Outputs of the cited program."""

    answer: str = Field(
        description="The answer, with a bracketed citation after each claim.",
    )
    citations: list[int] = Field(
        description="The numbers of the passages the answer cites.",
    )


class CitedProgram(SyncProgram[CitedRequest, CitedResponse]):
    """The cited program: call it, ``.stream(...)`` it or ``.batch([...])`` it."""

    request_type = CitedRequest
    response_type = CitedResponse
    path = "/v1/cited"

    def __call__(
        self,
        *,
        question: str,
    ) -> CitedResponse:
        """Run the program and return its outputs; a failure raises its ServiceError."""
        return self._call(
            question=question,
        )

    def stream(
        self,
        *,
        question: str,
    ) -> Stream[CitedResponse]:
        """Run the program and read its events as they come (opened on first use)."""
        return self._stream(
            question=question,
        )


class AsyncCitedProgram(AsyncProgram[CitedRequest, CitedResponse]):
    """The cited program for asyncio: await it, ``.stream(...)`` or ``.batch``."""

    request_type = CitedRequest
    response_type = CitedResponse
    path = "/v1/cited"

    async def __call__(
        self,
        *,
        question: str,
    ) -> CitedResponse:
        """Run the program and return its outputs; a failure raises its ServiceError."""
        return await self._call(
            question=question,
        )

    def stream(
        self,
        *,
        question: str,
    ) -> AsyncStream[CitedResponse]:
        """Run the program and read its events as they come (opened on first use)."""
        return self._stream(
            question=question,
        )


class Client(ClientBase):
    """A client of the service: ``Client(base_url, api_key=...)``, then one attribute per program.

    ``client.with_options(request_id=...)`` sends that ``X-Request-ID``.
    """

    cited: CitedProgram

    def _bind(self) -> None:
        self.cited = CitedProgram(self._transport)


class AsyncClient(AsyncClientBase):
    """:class:`Client` for asyncio: ``async with AsyncClient(base_url) as client``."""

    cited: AsyncCitedProgram

    def _bind(self) -> None:
        self.cited = AsyncCitedProgram(self._transport)
