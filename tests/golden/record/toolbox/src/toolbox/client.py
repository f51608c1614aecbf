"""A typed client of this service: a method per program, sync and async, streams that resume.

It imports httpx, httpx-sse and pydantic, none of the server's dependencies.
The request and response models are those of schemas.py, made from the same
fields (DSPy's ``Image`` and ``History`` travel as their JSON objects here);
the protocol underneath is in the README and ``runtime/client_core.py``.
"""

from typing import Literal

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


class ProfileRequest(Request):
    """Inputs of the profile program."""

    text: str = Field(
        description="The text to profile.",
    )
    language: Literal["en", "de", "fr"] | None = Field(
        default=None,
        description="Its language, if known.",
    )
    hints: list[str] = Field(
        description="Words that matter.",
    )
    weights: dict[str, float] = Field(
        description="Topic weights.",
    )
    max_items: int = Field(
        description="Most items per list.",
    )
    strict: bool = Field(
        description="Refuse to guess.",
    )


class ProfileResponse(Response):
    """Outputs of the profile program."""

    reasoning: str = Field(
        description="The model's step-by-step reasoning before the outputs.",
    )
    summary: str = Field(
        description="One sentence.",
    )
    category: Literal["news", "opinion", "other"] = Field(
        description="The kind of text.",
    )
    score: float = Field(
        description="Quality from 0 to 1.",
    )
    word_count: int = Field(
        description="Number of words.",
    )
    is_question: bool = Field(
        description="Whether it asks something.",
    )
    entities: list[str] = Field(
        description="Named entities.",
    )
    counts: dict[str, int] = Field(
        description="Mentions per entity.",
    )
    nested: list[dict[str, list[int]]] = Field(
        description="Deeply nested numbers.",
    )
    note: str | None = Field(
        default=None,
        description="Anything else worth saying.",
    )


class ProfileProgram(SyncProgram[ProfileRequest, ProfileResponse]):
    """The profile program: call it, ``.stream(...)`` it or ``.batch([...])`` it."""

    request_type = ProfileRequest
    response_type = ProfileResponse
    path = "/v1/profile"

    def __call__(
        self,
        *,
        text: str,
        language: Literal["en", "de", "fr"] | None = None,
        hints: list[str],
        weights: dict[str, float],
        max_items: int,
        strict: bool,
    ) -> ProfileResponse:
        """Run the program and return its outputs; a failure raises its ServiceError."""
        return self._call(
            text=text,
            language=language,
            hints=hints,
            weights=weights,
            max_items=max_items,
            strict=strict,
        )

    def stream(
        self,
        *,
        text: str,
        language: Literal["en", "de", "fr"] | None = None,
        hints: list[str],
        weights: dict[str, float],
        max_items: int,
        strict: bool,
    ) -> Stream[ProfileResponse]:
        """Run the program and read its events as they come (opened on first use)."""
        return self._stream(
            text=text,
            language=language,
            hints=hints,
            weights=weights,
            max_items=max_items,
            strict=strict,
        )


class AsyncProfileProgram(AsyncProgram[ProfileRequest, ProfileResponse]):
    """The profile program for asyncio: await it, ``.stream(...)`` or ``.batch``."""

    request_type = ProfileRequest
    response_type = ProfileResponse
    path = "/v1/profile"

    async def __call__(
        self,
        *,
        text: str,
        language: Literal["en", "de", "fr"] | None = None,
        hints: list[str],
        weights: dict[str, float],
        max_items: int,
        strict: bool,
    ) -> ProfileResponse:
        """Run the program and return its outputs; a failure raises its ServiceError."""
        return await self._call(
            text=text,
            language=language,
            hints=hints,
            weights=weights,
            max_items=max_items,
            strict=strict,
        )

    def stream(
        self,
        *,
        text: str,
        language: Literal["en", "de", "fr"] | None = None,
        hints: list[str],
        weights: dict[str, float],
        max_items: int,
        strict: bool,
    ) -> AsyncStream[ProfileResponse]:
        """Run the program and read its events as they come (opened on first use)."""
        return self._stream(
            text=text,
            language=language,
            hints=hints,
            weights=weights,
            max_items=max_items,
            strict=strict,
        )


class TranslateRequest(Request):
    """Inputs of the translate program."""

    text: str = Field(
        description="",
    )
    target: str = Field(
        description="",
    )


class TranslateResponse(Response):
    """Outputs of the translate program."""

    translation: str = Field(
        description="",
    )


class TranslateProgram(SyncProgram[TranslateRequest, TranslateResponse]):
    """The translate program: call it, ``.stream(...)`` it or ``.batch([...])`` it."""

    request_type = TranslateRequest
    response_type = TranslateResponse
    path = "/v1/translate"

    def __call__(
        self,
        *,
        text: str,
        target: str,
    ) -> TranslateResponse:
        """Run the program and return its outputs; a failure raises its ServiceError."""
        return self._call(
            text=text,
            target=target,
        )

    def stream(
        self,
        *,
        text: str,
        target: str,
    ) -> Stream[TranslateResponse]:
        """Run the program and read its events as they come (opened on first use)."""
        return self._stream(
            text=text,
            target=target,
        )


class AsyncTranslateProgram(AsyncProgram[TranslateRequest, TranslateResponse]):
    """The translate program for asyncio: await it, ``.stream(...)`` or ``.batch``."""

    request_type = TranslateRequest
    response_type = TranslateResponse
    path = "/v1/translate"

    async def __call__(
        self,
        *,
        text: str,
        target: str,
    ) -> TranslateResponse:
        """Run the program and return its outputs; a failure raises its ServiceError."""
        return await self._call(
            text=text,
            target=target,
        )

    def stream(
        self,
        *,
        text: str,
        target: str,
    ) -> AsyncStream[TranslateResponse]:
        """Run the program and read its events as they come (opened on first use)."""
        return self._stream(
            text=text,
            target=target,
        )


class SentimentRequest(Request):
    """Inputs of the sentiment program."""

    text: str = Field(
        description="",
    )


class SentimentResponse(Response):
    """Outputs of the sentiment program."""

    sentiment: Literal["positive", "negative", "neutral"] = Field(
        description="",
    )
    confidence: float = Field(
        description="",
    )


class SentimentProgram(SyncProgram[SentimentRequest, SentimentResponse]):
    """The sentiment program: call it, ``.stream(...)`` it or ``.batch([...])`` it."""

    request_type = SentimentRequest
    response_type = SentimentResponse
    path = "/v1/sentiment"

    def __call__(
        self,
        *,
        text: str,
    ) -> SentimentResponse:
        """Run the program and return its outputs; a failure raises its ServiceError."""
        return self._call(
            text=text,
        )

    def stream(
        self,
        *,
        text: str,
    ) -> Stream[SentimentResponse]:
        """Run the program and read its events as they come (opened on first use)."""
        return self._stream(
            text=text,
        )


class AsyncSentimentProgram(AsyncProgram[SentimentRequest, SentimentResponse]):
    """The sentiment program for asyncio: await it, ``.stream(...)`` or ``.batch``."""

    request_type = SentimentRequest
    response_type = SentimentResponse
    path = "/v1/sentiment"

    async def __call__(
        self,
        *,
        text: str,
    ) -> SentimentResponse:
        """Run the program and return its outputs; a failure raises its ServiceError."""
        return await self._call(
            text=text,
        )

    def stream(
        self,
        *,
        text: str,
    ) -> AsyncStream[SentimentResponse]:
        """Run the program and read its events as they come (opened on first use)."""
        return self._stream(
            text=text,
        )


class HeadlineRequest(Request):
    """Inputs of the headline program."""

    text: str = Field(
        description="",
    )


class HeadlineResponse(Response):
    """Outputs of the headline program."""

    reasoning: str = Field(
        description="The model's step-by-step reasoning before the outputs.",
    )
    headline: str = Field(
        description="",
    )


class HeadlineProgram(SyncProgram[HeadlineRequest, HeadlineResponse]):
    """The headline program: call it, ``.stream(...)`` it or ``.batch([...])`` it."""

    request_type = HeadlineRequest
    response_type = HeadlineResponse
    path = "/v1/headline"

    def __call__(
        self,
        *,
        text: str,
    ) -> HeadlineResponse:
        """Run the program and return its outputs; a failure raises its ServiceError."""
        return self._call(
            text=text,
        )

    def stream(
        self,
        *,
        text: str,
    ) -> Stream[HeadlineResponse]:
        """Run the program and read its events as they come (opened on first use)."""
        return self._stream(
            text=text,
        )


class AsyncHeadlineProgram(AsyncProgram[HeadlineRequest, HeadlineResponse]):
    """The headline program for asyncio: await it, ``.stream(...)`` or ``.batch``."""

    request_type = HeadlineRequest
    response_type = HeadlineResponse
    path = "/v1/headline"

    async def __call__(
        self,
        *,
        text: str,
    ) -> HeadlineResponse:
        """Run the program and return its outputs; a failure raises its ServiceError."""
        return await self._call(
            text=text,
        )

    def stream(
        self,
        *,
        text: str,
    ) -> AsyncStream[HeadlineResponse]:
        """Run the program and read its events as they come (opened on first use)."""
        return self._stream(
            text=text,
        )


class GlossaryRequest(Request):
    """Inputs of the glossary program."""

    question: str = Field(
        description="",
    )


class GlossaryResponse(Response):
    """Outputs of the glossary program."""

    reasoning: str = Field(
        description="The model's step-by-step reasoning before the outputs.",
    )
    answer: str = Field(
        description="",
    )
    sources: list[str] = Field(
        description="",
    )


class GlossaryProgram(SyncProgram[GlossaryRequest, GlossaryResponse]):
    """The glossary program: call it, ``.stream(...)`` it or ``.batch([...])`` it."""

    request_type = GlossaryRequest
    response_type = GlossaryResponse
    path = "/v1/glossary"

    def __call__(
        self,
        *,
        question: str,
    ) -> GlossaryResponse:
        """Run the program and return its outputs; a failure raises its ServiceError."""
        return self._call(
            question=question,
        )

    def stream(
        self,
        *,
        question: str,
    ) -> Stream[GlossaryResponse]:
        """Run the program and read its events as they come (opened on first use)."""
        return self._stream(
            question=question,
        )


class AsyncGlossaryProgram(AsyncProgram[GlossaryRequest, GlossaryResponse]):
    """The glossary program for asyncio: await it, ``.stream(...)`` or ``.batch``."""

    request_type = GlossaryRequest
    response_type = GlossaryResponse
    path = "/v1/glossary"

    async def __call__(
        self,
        *,
        question: str,
    ) -> GlossaryResponse:
        """Run the program and return its outputs; a failure raises its ServiceError."""
        return await self._call(
            question=question,
        )

    def stream(
        self,
        *,
        question: str,
    ) -> AsyncStream[GlossaryResponse]:
        """Run the program and read its events as they come (opened on first use)."""
        return self._stream(
            question=question,
        )


class Client(ClientBase):
    """A client of the service: ``Client(base_url, api_key=...)``, then one attribute per program.

    ``client.with_options(request_id=...)`` sends that ``X-Request-ID``.
    """

    profile: ProfileProgram
    translate: TranslateProgram
    sentiment: SentimentProgram
    headline: HeadlineProgram
    glossary: GlossaryProgram

    def _bind(self) -> None:
        self.profile = ProfileProgram(self._transport)
        self.translate = TranslateProgram(self._transport)
        self.sentiment = SentimentProgram(self._transport)
        self.headline = HeadlineProgram(self._transport)
        self.glossary = GlossaryProgram(self._transport)


class AsyncClient(AsyncClientBase):
    """:class:`Client` for asyncio: ``async with AsyncClient(base_url) as client``."""

    profile: AsyncProfileProgram
    translate: AsyncTranslateProgram
    sentiment: AsyncSentimentProgram
    headline: AsyncHeadlineProgram
    glossary: AsyncGlossaryProgram

    def _bind(self) -> None:
        self.profile = AsyncProfileProgram(self._transport)
        self.translate = AsyncTranslateProgram(self._transport)
        self.sentiment = AsyncSentimentProgram(self._transport)
        self.headline = AsyncHeadlineProgram(self._transport)
        self.glossary = AsyncGlossaryProgram(self._transport)
