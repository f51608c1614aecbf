"""One client reading one run: what every protocol's response is made from.

A run writes its events to its log (``run.py``); a reader follows that log. An
:class:`OpenRun` is one such reader, as every protocol sees it: the run's id,
its items (logged entries, keep-alives that are due, and the reader's own end),
or the same decoded into the run's events (``events.py``), with the reader's
presence held (which keeps the run from being ended for want of readers) until
it is closed. The native SSE protocol (``sse.py``) and each adapter
(``protocols/``) are encodings of that one sequence, written once each.

- A new run's reader waits for the run's first item before a response starts,
  but not past the first keep-alive, so that a run that fails at once is a
  plain HTTP error (``Runs.open`` raises ``RunFailed``).
- Items end after the run's terminal event (``done`` or ``error``), or with a
  ``Failure`` of this reader alone (it fell behind the events kept, the store
  is down, the server shuts down), which is no event of the run's log.
- Entries come in batches, all those logged since the reader last looked
  (``OpenRun.batches``, decoded: ``OpenRun.event_batches``): a reader that
  fell behind (a busy process, a slow client) catches up in one write
  instead of one per event; ``events`` hands them on one by one.
- ``flush`` (``STREAM_FLUSH_INTERVAL``, 0 by default) makes every reader fall
  behind on purpose: after a batch that ends with a token it waits that long
  before it looks again, so that tokens which come faster than that go out
  several to a write. A write to a socket costs far more CPU than framing an
  event, so a few hundredths of a second of latency buy CPU. The first token
  still goes out as soon as it is logged (nothing before it waits), and every
  later event at most ``flush`` seconds after it was logged.
- ``cancel_on_close``: closing the reader before its run ended stops the run
  (``disconnected``). Protocols without resume ask for it, so a client that
  disconnects stops the LM at once; the native stream does not, and its run
  goes on for ``RUN_GRACE`` seconds for the client to come back.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from fastapi.sse import EventSourceResponse

from .admission import SHUTTING_DOWN, Admission
from .errors import Failure
from .events import ErrorEvent, Event, TokenEvent, decode
from .runlog import DISCONNECTED, Batch, LogError

MAX_TICK = 1.0  # most seconds between two looks at the shutdown while a run is silent
RUN_ID_HEADER = "X-Run-ID"


def tick_for(keepalive: float) -> float:
    """How often a silent stream looks up: often enough for keep-alives and the shutdown."""
    return min(keepalive, MAX_TICK)


class Stoppable(Protocol):
    """What a reader may stop: the run it started (``run.StreamedRun``)."""

    async def stop(self, reason: Failure) -> None: ...


class Stream:
    """What a reader needs to read one run: its entries, presence, and pacing."""

    def __init__(
        self,
        run_id: str,
        entries: AsyncIterator[Batch | None],
        presence: AbstractAsyncContextManager[None],
        admission: Admission,
        keepalive: float,
        reconnect_ms: int,
        flush: float,
    ) -> None:
        self.run_id = run_id
        self.entries = entries  # yields None at least every ``tick`` seconds of silence
        self.presence = presence
        self.admission = admission
        self.keepalive = keepalive
        self.tick = tick_for(keepalive)
        self.reconnect_ms = reconnect_ms
        self.flush = flush  # seconds to wait after a batch that ends with a token

    async def next(self) -> Batch | Failure | None:
        """The next entries, None within a tick of silence, or a failure that ends the reading."""
        if self.admission.grace_over:
            return SHUTTING_DOWN
        try:
            return await anext(self.entries)
        except LogError as exc:
            return exc.failure


class _Mark:
    """A point in a stream that is not an entry: its start, or a keep-alive that is due."""


START, KEEPALIVE = _Mark(), _Mark()
Batches = Batch | Failure | _Mark  # what OpenRun.batches yields: never START


class OpenRun:
    """A run as one client reads it: its id and its items, until it is closed.

    Build it with ``Runs.open`` (a new run) or ``Runs.reader`` (a run joined
    later); close it with :meth:`aclose` (the responses here do), however the
    reading ends.
    """

    def __init__(
        self,
        stream: Stream,
        first: Batch | Failure | _Mark | None = START,
        *,
        run: Stoppable | None = None,
        cancel_on_close: bool = False,
    ) -> None:
        self.stream = stream
        self.run_id = stream.run_id
        self.first = first  # read ahead before the response started (START: nothing yet)
        self._run = run
        self._cancel_on_close = cancel_on_close and run is not None
        self._ended = False  # the reading saw the run's terminal event
        self._exits = contextlib.AsyncExitStack()

    async def enter(self) -> None:
        """Count as a reader of the run from now until :meth:`aclose`."""
        await self._exits.enter_async_context(self.stream.presence)

    async def read_first(self) -> Batch | Failure | _Mark:
        """Read ahead the first entries, or ``KEEPALIVE`` if none come within a keep-alive."""
        stream = self.stream
        loop = asyncio.get_running_loop()
        give_up = loop.time() + stream.keepalive
        while loop.time() < give_up:
            item = await stream.next()
            if item is not None:
                self.first = item
                return item
        self.first = KEEPALIVE
        return KEEPALIVE

    async def batches(self) -> AsyncIterator[Batches]:
        """Batches of entries, ``KEEPALIVE`` after each ``keepalive`` seconds of silence, the end.

        The end is the batch with the run's terminal entry, or a ``Failure`` of
        this reader.
        """
        stream = self.stream
        loop = asyncio.get_running_loop()
        spoke = loop.time()  # when this reader last sent something
        item, self.first = self.first, START
        try:
            while True:
                if isinstance(item, list):
                    spoke = loop.time()
                    yield item
                    if item[-1].terminal:
                        self._ended = True
                        return
                    if stream.flush and item[-1].event == TokenEvent.event:
                        await asyncio.sleep(stream.flush)
                elif isinstance(item, Failure):
                    yield item
                    return
                elif item is KEEPALIVE or (
                    item is None and loop.time() - spoke >= stream.keepalive
                ):
                    spoke = loop.time()
                    yield KEEPALIVE
                item = await stream.next()
        finally:
            await _close(stream.entries)

    async def event_batches(self) -> AsyncIterator[list[Event] | None]:
        """The run's events, decoded, a batch at a time; None when a keep-alive is due.

        The last event is the run's ``DoneEvent`` or ``ErrorEvent``, or an
        ``ErrorEvent`` of this reader's own end (``slow_reader``, ``shutting_down``).
        """
        async with contextlib.aclosing(self.batches()) as batches:
            async for batch in batches:
                if isinstance(batch, list):
                    yield [decode(entry.event, entry.data) for entry in batch]
                elif isinstance(batch, Failure):
                    yield [ErrorEvent(code=batch.code, message=batch.message, run_id=self.run_id)]
                else:
                    yield None

    async def events(self) -> AsyncIterator[Event | None]:
        """The run's events, decoded, one by one; None when a keep-alive is due."""
        async with contextlib.aclosing(self.event_batches()) as batches:
            async for batch in batches:
                if batch is None:
                    yield None
                else:
                    for event in batch:
                        yield event

    async def aclose(self) -> None:
        """Stop reading; with ``cancel_on_close``, stop the run too if it has not ended."""
        try:
            if self._cancel_on_close and not self._ended and self._run is not None:
                await self._run.stop(DISCONNECTED)
        finally:
            await _close(self.stream.entries)
            await self._exits.aclose()

    async def __aenter__(self) -> "OpenRun":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _close(entries: AsyncIterator[Any]) -> None:
    aclose = getattr(entries, "aclose", None)
    if aclose is not None:
        await aclose()


class ReaderResponse(EventSourceResponse):
    """An event stream read from one run; it closes the reader however the response ends.

    The body generator's own ``finally`` does not run if the client leaves
    before the first chunk is sent (an async generator never started is never
    finalized), so the response also closes the reader. Every protocol that
    answers with ``text/event-stream`` uses it, with its own body encoding.
    """

    def __init__(
        self,
        body: AsyncIterator[bytes],
        reader: OpenRun,
        headers: dict[str, str] | None = None,
    ) -> None:
        base = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        super().__init__(body, headers={**base, RUN_ID_HEADER: reader.run_id, **(headers or {})})
        self.reader = reader

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.reader.aclose()
