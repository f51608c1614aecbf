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


class QaRequest(Request):
    """Inputs of the qa program."""

    question: str = Field(
        description="The question to answer.",
    )


class QaResponse(Response):
    """Outputs of the qa program."""

    reasoning: str = Field(
        description="The model's step-by-step reasoning before the outputs.",
    )
    answer: str = Field(
        description="A short answer, one or two sentences.",
    )


class QaProgram(SyncProgram[QaRequest, QaResponse]):
    """The qa program: call it, ``.stream(...)`` it or ``.batch([...])`` it."""

    request_type = QaRequest
    response_type = QaResponse
    path = "/v1/qa"

    def __call__(
        self,
        *,
        question: str,
    ) -> QaResponse:
        """Run the program and return its outputs; a failure raises its ServiceError."""
        return self._call(
            question=question,
        )

    def stream(
        self,
        *,
        question: str,
    ) -> Stream[QaResponse]:
        """Run the program and read its events as they come (opened on first use)."""
        return self._stream(
            question=question,
        )


class AsyncQaProgram(AsyncProgram[QaRequest, QaResponse]):
    """The qa program for asyncio: await it, ``.stream(...)`` or ``.batch``."""

    request_type = QaRequest
    response_type = QaResponse
    path = "/v1/qa"

    async def __call__(
        self,
        *,
        question: str,
    ) -> QaResponse:
        """Run the program and return its outputs; a failure raises its ServiceError."""
        return await self._call(
            question=question,
        )

    def stream(
        self,
        *,
        question: str,
    ) -> AsyncStream[QaResponse]:
        """Run the program and read its events as they come (opened on first use)."""
        return self._stream(
            question=question,
        )


class Client(ClientBase):
    """A client of the service: ``Client(base_url, api_key=...)``, then one attribute per program.

    ``client.with_options(request_id=...)`` sends that ``X-Request-ID``.
    """

    qa: QaProgram

    def _bind(self) -> None:
        self.qa = QaProgram(self._transport)


class AsyncClient(AsyncClientBase):
    """:class:`Client` for asyncio: ``async with AsyncClient(base_url) as client``."""

    qa: AsyncQaProgram

    def _bind(self) -> None:
        self.qa = AsyncQaProgram(self._transport)
