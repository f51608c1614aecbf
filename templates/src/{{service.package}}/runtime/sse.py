"""A run's log read out as Server-Sent Events: ids that resume, keep-alives, the response.

- The stream's first event carries ``retry:`` (how long a client waits to
  reconnect), once; not a frame of its own, which some clients (httpx-sse)
  would hand on as an empty event.
- Every event's ``id`` is ``<run>-<n>``, its position in the run's log, so a
  standard client's automatic reconnect (``Last-Event-ID``) resumes the run
  right after the last event it got: no gap, no duplicate, no second run.
- A keep-alive is a ``: ping`` comment, with no id, after ``keepalive``
  seconds of silence.
- A new run's status line is held until its first event is in hand, but not
  past the first keep-alive (note 1): a failure before it is a plain HTTP error.
- The stream ends after the run's terminal event (``done`` or ``error``); a
  reader that cannot go on (it fell behind what the log keeps, the store is
  down, the server shuts down) gets an ``error`` of its own, not logged.
- While the response is open it counts as a reader of the run, which keeps
  the run from being ended for want of readers (``run.py``).

Note 1. ``fastapi.sse``'s generator routes send the status line before the
first event, so the stream routes return an ``EventSourceResponse`` built here,
encoded with FastAPI's own ``format_sse_event``.
"""

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi.sse import KEEPALIVE_COMMENT, EventSourceResponse, format_sse_event
from starlette.responses import Response

from .admission import SHUTTING_DOWN, Admission
from .errors import Failure
from .http import error_response
from .run import error_data
from .runlog import Entry, LogError

MAX_TICK = 1.0  # most seconds between two looks at the shutdown while a run is silent
RUN_ID_HEADER = "X-Run-ID"


def tick_for(keepalive: float) -> float:
    """How often a silent stream looks up: often enough for keep-alives and the shutdown."""
    return min(keepalive, MAX_TICK)


class Stream:
    """What a response needs to read one run: its entries, presence, and pacing."""

    def __init__(
        self,
        run_id: str,
        entries: AsyncIterator[Entry | None],
        presence: AbstractAsyncContextManager[None],
        admission: Admission,
        keepalive: float,
        reconnect_ms: int,
    ) -> None:
        self.run_id = run_id
        self.entries = entries  # yields None after each ``tick`` seconds of silence
        self.presence = presence
        self.admission = admission
        self.keepalive = keepalive
        self.tick = tick_for(keepalive)
        self.reconnect_ms = reconnect_ms

    async def next(self) -> Entry | Failure | None:
        """The next entry, None after a tick of silence, or a failure that ends the reading."""
        if self.admission.grace_over:
            return SHUTTING_DOWN
        try:
            return await anext(self.entries)
        except LogError as exc:
            return exc.failure


class _Mark:
    """A point in a stream that is not an entry: its start, or a keep-alive that is due."""


START, PING = _Mark(), _Mark()
Item = Entry | Failure | _Mark | None


async def respond_new(stream: Stream, failure_of_run: Callable[[], Failure | None]) -> Response:
    """A new run's event stream, or an error response if it fails before its first event.

    ``failure_of_run()`` says how the run failed, when its first entry is its error.
    """
    exits = contextlib.AsyncExitStack()
    await exits.enter_async_context(stream.presence)
    try:
        first = await _first(stream)
        failure = failure_of_run()
        if isinstance(first, Entry) and first.event == "error" and failure is not None:
            await exits.aclose()
            response = error_response(failure)
            response.headers[RUN_ID_HEADER] = stream.run_id
            return response
    except BaseException:
        await exits.aclose()
        raise
    return RunResponse(stream, first, exits)


async def respond_resumed(stream: Stream) -> Response:
    """The event stream of a run joined after its start (a resume, or another reader)."""
    exits = contextlib.AsyncExitStack()
    await exits.enter_async_context(stream.presence)
    return RunResponse(stream, START, exits)


async def _first(stream: Stream) -> Item:
    """The first entry (or failure), or ``PING`` if there is none within ``keepalive`` seconds."""
    waited = 0.0
    while waited < stream.keepalive:
        item = await stream.next()
        if item is not None:
            return item
        waited += stream.tick
    return PING


async def frames(stream: Stream, first: Item) -> AsyncIterator[bytes]:
    """The SSE body: numbered events and keep-alives; it ends after the run's end."""
    silence = 0.0
    retry: int | None = stream.reconnect_ms  # sent with the first event
    item = first
    try:
        while True:
            if isinstance(item, Entry):
                silence = 0.0
                yield frame(item, stream.run_id, retry)
                retry = None
                if item.terminal:
                    return
            elif isinstance(item, Failure):
                # The reader's own end: no id, for it is no position in the run's log.
                data = error_data(item, stream.run_id)
                yield format_sse_event(data_str=data, event="error", retry=retry)
                return
            elif item is PING:
                yield KEEPALIVE_COMMENT  # a keep-alive comment carries no id
            elif item is None:
                silence += stream.tick
                if silence >= stream.keepalive:
                    silence = 0.0
                    yield KEEPALIVE_COMMENT
            item = await stream.next()
    finally:
        await _close(stream.entries)


async def _close(entries: AsyncIterator[Any]) -> None:
    aclose = getattr(entries, "aclose", None)
    if aclose is not None:
        await aclose()


def frame(entry: Entry, run_id: str, retry: int | None = None) -> bytes:
    """One logged event as an SSE frame: ``event``, its JSON ``data``, and ``<run>-<n>``."""
    event_id = f"{run_id}-{entry.position}"
    return format_sse_event(data_str=entry.data, event=entry.event, id=event_id, retry=retry)


class RunResponse(EventSourceResponse):
    """The event stream of a run; it reads the run until the response ends, however it ends.

    The body generator's own ``finally`` does not run if the client leaves
    before the first chunk is sent (an async generator never started is never
    finalized), so the response also ends the reading (``exits``).
    """

    def __init__(self, stream: Stream, first: Item, exits: contextlib.AsyncExitStack) -> None:
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        super().__init__(frames(stream, first), headers={**headers, RUN_ID_HEADER: stream.run_id})
        self._exits = exits

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._exits.aclose()
