"""A streamed run: one task that iterates the program, and a bounded queue of its events.

The task puts the program's events into the queue; the response body
(``sse.py``) reads it. So:

- a slow client fills the queue and the run waits for it, holding at most
  ``stream_buffer`` events (and DSPy's own 16) in memory, but only for
  ``reader_timeout`` seconds: then the run ends and frees its slot, and the
  client, if it ever reads again, gets the buffered events and an error
  ``slow_reader``;
- while the run waits for its reader only the deadline counts: a slow reader
  is not an idle program;
- stopping a run, for whatever reason, is cancelling its task (note 1), and
  the response always closes the run before it returns, so no run outlives its
  response.

Note 1. Closing a ``streamify`` generator from a task other than the one
iterating it leaks an anyio cancel scope that later cancels the wrong task; a
run is only ever stopped by cancelling the task that iterates it, and only
that task closes the generator (``contextlib.aclosing``), never ``aclose()``
from another.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import dspy
from pydantic import BaseModel

from .admission import SHUTTING_DOWN, Admission
from .errors import Failure, describe
from .events import DoneEvent, Event, PredictionEvent, TokenEvent
from .limits import SLOW_READER, TIMED_OUT
from .metrics import Metrics, run_context
from .program import ServedProgram

# Every run's outcome is logged by one logger, the runs' (``<package>.runtime.runs``),
# whichever module reports it, so that one filter sees them all.
logger = logging.getLogger(f"{__package__}.runs")

ToResponse = Callable[[dspy.Prediction], BaseModel]


class End:
    """Queue marker: the run is over; ``failure`` says how it failed, if it did."""

    def __init__(self, failure: Failure | None = None) -> None:
        self.failure = failure


class StreamedRun:
    """One streamed run: its task and queue, and the slot it holds until closed.

    It is in ``open_runs`` from its creation until it is closed, for the drain
    to find it.
    """

    def __init__(
        self,
        name: str,
        caller: str,
        admission: Admission,
        metrics: Metrics,
        open_runs: set["StreamedRun"],
    ) -> None:
        self.name = name
        self.caller = caller
        self.admission = admission
        self.limits = admission.limits
        self.metrics = metrics
        self.holding = True  # its slot, until released
        self.queue: asyncio.Queue[Event | End] = asyncio.Queue(self.limits.stream_buffer)
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        self.started = time.perf_counter()
        self.tokens = 0
        self.outcome = "disconnected"  # until the run says how it ended
        self.lost: End | None = None  # how the run ended, when its queue had no room to say
        self._open = open_runs
        open_runs.add(self)
        metrics.active_streams.inc()

    def start(
        self, program: ServedProgram, inputs: dict[str, Any], to_response: ToResponse
    ) -> None:
        """Start the run's task, the only one that ever iterates (or closes) the program."""
        self.task = asyncio.create_task(self._iterate(program, inputs, to_response))

    async def _iterate(
        self, program: ServedProgram, inputs: dict[str, Any], to_response: ToResponse
    ) -> None:
        """Iterate the program (in this task only) and queue its events."""
        queue = self.queue
        loop = asyncio.get_running_loop()
        limits = self.limits
        deadline = loop.time() + limits.deadline if limits.deadline else None

        def next_timeout() -> float | None:
            idle = loop.time() + limits.idle_timeout if limits.idle_timeout else None
            if idle is None or deadline is None:
                return idle or deadline
            return min(idle, deadline)

        try:
            async with asyncio.timeout(next_timeout()) as clock:
                with run_context(self.metrics, program.name):
                    async with contextlib.aclosing(program.events(inputs)) as items:
                        async for item in items:
                            if isinstance(item, TokenEvent):
                                self.tokens += 1
                                if self.tokens == 1:
                                    waited = time.perf_counter() - self.started
                                    self.metrics.first_token_seconds.labels(program.name).observe(
                                        waited
                                    )
                            elif isinstance(item, dspy.Prediction):
                                self.metrics.record_usage(program.name, item)
                                outputs = to_response(item).model_dump(mode="json")
                                item = PredictionEvent(outputs=outputs)
                            try:
                                queue.put_nowait(item)
                            except asyncio.QueueFull:
                                clock.reschedule(deadline)  # a slow reader is not an idle program
                                await _wait_for_reader(queue, item, limits.reader_timeout)
                            clock.reschedule(next_timeout())
            self.outcome = "ok"
            await queue.put(DoneEvent())
            await queue.put(End())
        except _ReaderBehind:
            logger.warning("%s: the client stopped reading; run stopped", program.name)
            self.outcome = SLOW_READER.code
            self.lost = End(SLOW_READER)  # the queue is full: the reader finds it after the rest
            self.release()
        except TimeoutError:
            logger.warning("%s: run timed out", program.name)
            self.outcome = TIMED_OUT.code
            await queue.put(End(TIMED_OUT))
        except Exception as exc:
            failure = describe(exc)
            logger.log(
                failure.log_level, "%s: run failed: %s", program.name, failure.code, exc_info=exc
            )
            self.outcome = failure.code
            await queue.put(End(failure))

    async def first(self, patience: float) -> Event | End | None:
        """The run's first item, or None if there is none within ``patience`` seconds."""
        try:
            async with asyncio.timeout(patience):
                return await self.queue.get()
        except TimeoutError:
            return None

    async def next(self, patience: float) -> Event | End | None:
        """The next queued item, the end on shutdown, or None after ``patience`` s of silence."""
        if self.admission.grace_over:
            return End(SHUTTING_DOWN)
        queue = self.queue
        try:
            return queue.get_nowait()
        except asyncio.QueueEmpty:
            pass
        if self.lost is not None:
            return self.lost
        try:
            async with asyncio.timeout(patience):
                return await queue.get()
        except TimeoutError:
            return None

    def wake_reader(self, failure: Failure) -> None:
        """End the stream for a reader waiting for its next event (a full queue has none)."""
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(End(failure))

    def release(self) -> None:
        """Free the run's slot (when it ends, or its client falls behind); safe to call twice."""
        if self.holding:
            self.holding = False
            self.admission.release(self.caller)

    async def close(self) -> None:
        """Stop the run (if it still runs) and free its slot; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        self._open.discard(self)
        self.release()
        if self.task is not None:
            await stop(self.task)
        metrics = self.metrics
        metrics.active_streams.dec()
        metrics.requests.labels(self.name, "stream", self.outcome).inc()
        metrics.stream_seconds.labels(self.name).observe(time.perf_counter() - self.started)
        metrics.tokens.labels(self.name).inc(self.tokens)


class _ReaderBehind(Exception):
    """The client stayed ``reader_timeout`` seconds behind by a full buffer."""


async def _wait_for_reader(queue: asyncio.Queue[Any], item: Any, patience: float) -> None:
    """Queue ``item`` once the reader makes room, or raise :class:`_ReaderBehind`."""
    try:
        async with asyncio.timeout(patience):
            await queue.put(item)
    except TimeoutError:
        raise _ReaderBehind from None


async def stop(task: asyncio.Task[Any]) -> None:
    """Cancel a run's task and wait for it to unwind."""
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
