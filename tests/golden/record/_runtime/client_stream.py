"""The typed client's streams: typed events, and a run resumed after a dropped connection.

A stream reads a run's events (docs/protocol.md, *Events*) as the models of
``events.py``, each with the ``id`` of its frame, and the ``prediction``
event's outputs as the program's response model. When the connection breaks
before ``done`` or ``error`` (a reset, a proxy's timeout, a stream that just
ends), it waits the ``retry:`` interval the server gave and reads on from
``GET /v1/runs/{run}/events`` with ``Last-Event-ID``: the same run, no event
twice, none missed, the LM not paid again. ``max_retries`` reconnects in a row
that bring no new event end it with :class:`ConnectionLost`.

Imports httpx, httpx-sse, pydantic and the standard library only.
"""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar

import httpx
from httpx_sse import EventSource, ServerSentEvent
from pydantic import BaseModel

from .client_errors import ConnectionLost, ServiceError, error_of, service_error
from .events import DoneEvent, ErrorEvent, EventData, StatusEvent, TokenEvent

if TYPE_CHECKING:
    from .client_core import AsyncTransport, SyncTransport

R = TypeVar("R", bound=BaseModel)
DEFAULT_RETRY_S = 1.0  # until the server's first event says (retry: RECONNECT_DELAY)


class Frame(EventData):
    """What every event of a stream carries: ``run_id``, ``request_id`` and its frame's id."""

    id: str | None = None  # "<run>-<n>"; None only for a reader's own error (slow_reader)

    @property
    def position(self) -> int | None:
        """The event's position ``n`` in its run, from 1."""
        return _position(self.id)


class Status(StatusEvent, Frame):
    """Progress: a tool, an LM call or a module started or ended."""


class Token(TokenEvent, Frame):
    """A piece of a streamed field; a field's chunks concatenate to its value."""


class Error(ErrorEvent, Frame):
    """The run failed (or this reader could not follow it); the stream ends."""

    def exception(self) -> ServiceError:
        """The typed exception of this error, to raise where an event loop cannot go on."""
        return service_error(self.code, self.message, request_id=self.request_id)


class Done(DoneEvent, Frame):
    """The run finished and every event was sent."""


class Prediction(Frame, Generic[R]):
    """The program's outputs, as its response model: what the JSON endpoint returns.

    ``events.PredictionEvent`` with its ``outputs`` typed by the program; the
    other events are the server's models as they are.
    """

    event: ClassVar[str] = "prediction"
    outputs: R


Event = Status | Token | Error | Done
_EVENTS: dict[str, type[Event]] = {kind.event: kind for kind in (Status, Token, Error, Done)}


def _position(event_id: str | None) -> int | None:
    tail = (event_id or "").rpartition("-")[2]
    return int(tail) if tail.isdigit() else None


class _Reader(Generic[R]):
    """Where a stream is in its run, and what to ask for after a broken connection."""

    def __init__(self, response_type: type[R], max_retries: int) -> None:
        self.prediction = Prediction[response_type]  # type: ignore[valid-type]
        self.max_retries = max_retries
        self.run_id: str | None = None
        self.request_id: str | None = None
        self.last_id: str | None = None
        self.position = 0
        self.retry_s = DEFAULT_RETRY_S
        self.failures = 0
        self.ended = False

    def opened(self, response: httpx.Response) -> None:
        self.run_id = response.headers.get("x-run-id") or self.run_id
        self.request_id = self.request_id or response.headers.get("x-request-id")

    def accept(self, sse: ServerSentEvent) -> "Event | Prediction[R] | None":
        """The typed event of a frame; None for a ping, a repeat or an unknown kind."""
        if sse.retry is not None:
            self.retry_s = sse.retry / 1000
        if not sse.data:
            return None  # a keep-alive or retry-only frame
        position = _position(sse.id)
        if position is not None:
            if position <= self.position:
                return None  # sent again after a reconnect (the log replays from n)
            self.position, self.last_id, self.failures = position, sse.id, 0
            self.run_id = self.run_id or sse.id.rpartition("-")[0]  # "<run>-<n>"
        kind = self.prediction if sse.event == "prediction" else _EVENTS.get(sse.event)
        if kind is None:
            return None  # an event a newer service added: not this client's to read
        event: Event | Prediction[R] = kind.model_validate(
            {**json.loads(sse.data), "id": sse.id or None}
        )
        self.ended = isinstance(event, Done | Error)
        return event

    def dropped(self, cause: BaseException | None) -> float:
        """The seconds to wait before reconnecting; raises when the run cannot be resumed."""
        if self.run_id is not None:
            self.failures += 1
        if self.run_id is None or self.failures > self.max_retries:
            reason = "no run id" if self.run_id is None else f"{self.max_retries} retries"
            message = f"the stream broke after event {self.position} ({reason})"
            raise ConnectionLost("connection_lost", message, request_id=self.request_id) from cause
        return self.retry_s

    def resume(self) -> tuple[str, dict[str, str], dict[str, str]]:
        """Path, query and headers of the request reading on after the last event."""
        if self.last_id is None:
            return f"/v1/runs/{self.run_id}/events", {"after": "0"}, {}
        return f"/v1/runs/{self.run_id}/events", {}, {"last-event-id": self.last_id}


def _is_stream(response: httpx.Response) -> bool:
    kind = response.headers.get("content-type", "")
    return response.status_code == 200 and kind.startswith("text/event-stream")


def _retried(error: ServiceError) -> bool:
    """Whether a reconnect answered with ``error`` is worth another try (a 5xx)."""
    return error.status is not None and error.status >= 500


class Stream(Generic[R]):
    """One streamed run: iterate it for its events, in order, each once.

    Use it as a context manager to close the connection when done (a run
    nobody reads is cancelled ``RUN_GRACE`` seconds later), or :meth:`cancel`
    to stop the run now: the stream then ends with an ``Error`` ``cancelled``.
    Errors before the first event raise their :class:`ServiceError`; after it,
    they arrive as an ``Error`` event.
    """

    def __init__(
        self, transport: "SyncTransport", path: str, body: Any, response_type: type[R]
    ) -> None:
        self._transport = transport
        self._first: tuple[str, Any] | None = (path, body)
        self._reader = _Reader(response_type, transport.options.max_retries)
        self._connection = contextlib.ExitStack()
        self._closed = False  # by close(), maybe from inside a loop over the events
        # One iterator over the connection's frames, shared by every loop over the stream
        # (a response's body can be read once: a second iter_sse() would raise).
        self._frames: Iterator[ServerSentEvent] | None = None

    @property
    def run_id(self) -> str | None:
        """The run's id (``X-Run-ID``), once the stream is open."""
        return self._reader.run_id

    @property
    def request_id(self) -> str | None:
        """The id of the request that started the run (``X-Request-ID``)."""
        return self._reader.request_id

    def __enter__(self) -> Self:
        self._start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Event | Prediction[R]]:
        self._start()
        while not self._reader.ended and self._frames is not None:
            cause: BaseException | None = None
            try:
                for sse in self._frames:
                    event = self._reader.accept(sse)
                    if event is not None:
                        yield event
                        if self._reader.ended or self._closed:
                            break
            except httpx.TransportError as error:  # reset, refused, read timeout
                cause = error
            self._connection.close()
            self._frames = None
            if not (self._reader.ended or self._closed):
                self._reconnect(cause)
        self.close()

    def cancel(self) -> None:
        """Stop the run on the service (``POST /v1/runs/{run}/cancel``); read on for its end."""
        if self._reader.run_id is not None:
            self._transport.cancel_run(self._reader.run_id)

    def close(self) -> None:
        """Close the connection (the run goes on for ``RUN_GRACE`` seconds, resumable)."""
        self._first = None
        self._closed = True
        self._connection.close()
        self._frames = None

    def _start(self) -> None:
        if self._first is not None:
            path, body = self._first
            self._first = None
            self._open("POST", path, json=body)

    def _open(self, method: str, path: str, **request: Any) -> None:
        transport = self._transport
        extra = request.pop("headers", {})
        response = self._connection.enter_context(
            transport.http.stream(
                method, transport.url(path), headers=transport.headers(extra), **request
            )
        )
        if not _is_stream(response):
            response.read()
            self._connection.close()
            raise error_of(response)
        self._reader.opened(response)
        self._frames = EventSource(response).iter_sse()

    def _reconnect(self, cause: BaseException | None) -> None:
        while True:
            time.sleep(self._reader.dropped(cause))
            path, params, headers = self._reader.resume()
            try:
                self._open("GET", path, params=params, headers=headers)
                return
            except httpx.TransportError as error:
                cause = error
            except ServiceError as error:
                if not _retried(error):
                    raise
                cause = error


class AsyncStream(Generic[R]):
    """:class:`Stream` for asyncio: ``async with`` and ``async for``."""

    def __init__(
        self, transport: "AsyncTransport", path: str, body: Any, response_type: type[R]
    ) -> None:
        self._transport = transport
        self._first: tuple[str, Any] | None = (path, body)
        self._reader = _Reader(response_type, transport.options.max_retries)
        self._connection = contextlib.AsyncExitStack()
        self._closed = False
        self._frames: AsyncIterator[ServerSentEvent] | None = None  # see Stream

    @property
    def run_id(self) -> str | None:
        """The run's id (``X-Run-ID``), once the stream is open."""
        return self._reader.run_id

    @property
    def request_id(self) -> str | None:
        """The id of the request that started the run (``X-Request-ID``)."""
        return self._reader.request_id

    async def __aenter__(self) -> Self:
        await self._start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def __aiter__(self) -> AsyncIterator[Event | Prediction[R]]:
        await self._start()
        while not self._reader.ended and self._frames is not None:
            cause: BaseException | None = None
            try:
                async for sse in self._frames:
                    event = self._reader.accept(sse)
                    if event is not None:
                        yield event
                        if self._reader.ended or self._closed:
                            break
            except httpx.TransportError as error:
                cause = error
            await self._connection.aclose()
            self._frames = None
            if not (self._reader.ended or self._closed):
                await self._reconnect(cause)
        await self.aclose()

    async def cancel(self) -> None:
        """Stop the run on the service (``POST /v1/runs/{run}/cancel``); read on for its end."""
        if self._reader.run_id is not None:
            await self._transport.cancel_run(self._reader.run_id)

    async def aclose(self) -> None:
        """Close the connection (the run goes on for ``RUN_GRACE`` seconds, resumable)."""
        self._first = None
        self._closed = True
        await self._connection.aclose()
        self._frames = None

    async def _start(self) -> None:
        if self._first is not None:
            path, body = self._first
            self._first = None
            await self._open("POST", path, json=body)

    async def _open(self, method: str, path: str, **request: Any) -> None:
        transport = self._transport
        extra = request.pop("headers", {})
        response = await self._connection.enter_async_context(
            transport.http.stream(
                method, transport.url(path), headers=transport.headers(extra), **request
            )
        )
        if not _is_stream(response):
            await response.aread()
            await self._connection.aclose()
            raise error_of(response)
        self._reader.opened(response)
        self._frames = EventSource(response).aiter_sse()

    async def _reconnect(self, cause: BaseException | None) -> None:
        while True:
            await asyncio.sleep(self._reader.dropped(cause))
            path, params, headers = self._reader.resume()
            try:
                await self._open("GET", path, params=params, headers=headers)
                return
            except httpx.TransportError as error:
                cause = error
            except ServiceError as error:
                if not _retried(error):
                    raise
                cause = error
