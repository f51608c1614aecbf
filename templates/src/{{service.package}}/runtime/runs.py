"""Admission, deadlines and shutdown for program runs, and their SSE responses.

A stream is a race between four parties: the program, the client, the clock
(deadline, idle timeout, keep-alive) and the server's shutdown. Each run is
one task that iterates the program and puts its events into a bounded queue;
the response body reads the queue. So:

- a failure before the first event becomes a plain HTTP error (the status line
  is not sent until the first event is in hand);
- a slow client fills the queue and the run waits for it, holding at most
  ``stream_buffer`` events (and DSPy's own 16) in memory, but only for
  ``reader_timeout`` seconds: then the run ends and frees its slot, and the
  client, if it ever reads again, gets the buffered events and an error
  ``slow_reader``;
- a JSON or batch request runs in a task of its own, which ends when the
  client disconnects or the shutdown's grace period is over;
- stopping a run, for whatever reason, is cancelling its task (note 1), and the
  body always does that before it returns, so no run outlives its response.

Notes:
1. Closing a ``streamify`` generator from a task other than the one iterating
   it leaks an anyio cancel scope that later cancels the wrong task; a run is
   only ever stopped by cancelling the task that iterates it.
2. ``fastapi.sse``'s generator routes send the status line before the first
   event, so the stream routes return an ``EventSourceResponse`` built here,
   encoded with FastAPI's own ``format_sse_event``.
"""

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import dspy
from fastapi.exceptions import RequestValidationError
from fastapi.sse import KEEPALIVE_COMMENT, EventSourceResponse, format_sse_event
from pydantic import BaseModel
from starlette.responses import Response
from starlette.types import Receive

from .errors import Failure, RunFailed, describe
from .events import DoneEvent, ErrorEvent, Event, PredictionEvent, TokenEvent
from .http import ErrorBody, error_response
from .inputs import checked_inputs
from .metrics import LMCallMetrics, Metrics
from .program import ServedProgram
from .security import current_caller

logger = logging.getLogger(__name__)

ToResponse = Callable[[dspy.Prediction], BaseModel]
T = TypeVar("T")
R = TypeVar("R", bound=BaseModel)

OVERLOADED = Failure(503, "overloaded", "Too many requests in progress; retry shortly.", 1.0)
CALLER_BUSY = Failure(
    429, "too_many_runs", "This caller has too many runs in progress; retry shortly.", 1.0
)
SLOW_READER = Failure(
    503, "slow_reader", "The client read too slowly; the run was stopped.", 1.0, logging.WARNING
)
CLIENT_GONE = Failure(499, "disconnected", "The client left before the run ended.")
SHUTTING_DOWN = Failure(503, "shutting_down", "The server is shutting down; retry elsewhere.", 1.0)
TIMED_OUT = Failure(504, "timeout", "The program did not finish in time.")


@dataclass(frozen=True)
class RunLimits:
    """How long and how many runs may go on, and how streams are paced."""

    max_concurrent: int = 100
    max_per_caller: int | None = None  # runs at once per API key (or address); None: no cap
    deadline: float | None = 300.0  # seconds for a whole run
    idle_timeout: float | None = 60.0  # seconds between two events of a run
    stream_buffer: int = 64  # events held for a slow client
    reader_timeout: float = 30.0  # seconds a run waits for a client behind by stream_buffer
    keepalive: float = 15.0  # seconds of silence before a ": ping" comment
    shutdown_grace: float = 10.0  # seconds open streams get to finish on shutdown
    max_input_chars: int = 100_000  # per input field, as text or JSON
    batch_parallelism: int = 4  # items of one batch run at once
    batch_max_items: int = 100  # items in one batch request


class _End:
    """Queue marker: the run is over; ``failure`` says how it failed, if it did."""

    def __init__(self, failure: Failure | None = None) -> None:
        self.failure = failure


class Runs:
    """Every run of the process: admission, limits and graceful shutdown."""

    def __init__(self, limits: RunLimits, metrics: Metrics) -> None:
        self.limits = limits
        self.metrics = metrics
        self.active = 0
        self.by_caller: dict[str, int] = {}
        self.open: set[_Run] = set()
        self.working: set[asyncio.Task[Any]] = set()  # JSON and batch requests
        self.draining = False
        self._drained = asyncio.Event()
        self._grace_over = asyncio.Event()

    def admit(self, caller: str) -> Failure | None:
        """Take a slot for a new run of ``caller``, or say why it cannot start now."""
        if self.draining:
            return SHUTTING_DOWN
        if self.active >= self.limits.max_concurrent:
            return OVERLOADED
        per_caller = self.limits.max_per_caller
        held = self.by_caller.get(caller, 0)
        if per_caller is not None and held >= per_caller:
            return CALLER_BUSY
        self.active += 1
        self.by_caller[caller] = held + 1
        return None

    def _release(self, caller: str) -> None:
        self.active -= 1
        held = self.by_caller[caller] - 1
        if held:
            self.by_caller[caller] = held
        else:
            del self.by_caller[caller]
        if self.draining and self.active == 0:
            self._drained.set()

    def _context(self, program: ServedProgram) -> Any:
        """DSPy settings of one run: LM call metrics and usage tracking."""
        callback = LMCallMetrics(self.metrics, program.name)
        return dspy.context(callbacks=[*dspy.settings.callbacks, callback], track_usage=True)

    async def predict(
        self, program: ServedProgram, body: BaseModel, receive: Receive
    ) -> dspy.Prediction:
        """Run to completion under the limits; raise :class:`RunFailed` on failure.

        ``receive`` is the request's ASGI receive, read to learn that the client left.
        """
        inputs = checked_inputs(body, self.limits.max_input_chars)
        return await self._while_wanted(
            self._predict(program, inputs, "json"), receive, program.name, "json"
        )

    async def _while_wanted(
        self, work: Coroutine[Any, Any, T], receive: Receive, name: str, endpoint: str
    ) -> T:
        """Run ``work`` in a task that is cancelled if the client leaves or shutdown ends it.

        A plain route's handler goes on after its client disconnects (nothing
        cancels it), holding a slot and paying for the LM; so the work runs in
        its own task, raced against the client's ``http.disconnect``.
        """
        task = asyncio.ensure_future(work)
        watcher = asyncio.ensure_future(_disconnected(receive))
        self.working.add(task)
        try:
            await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.working.discard(task)
            watcher.cancel()
            if not task.done():  # the client left, or this handler itself was cancelled
                await _stop(task)
        if task.cancelled():
            failure = SHUTTING_DOWN if self._grace_over.is_set() else CLIENT_GONE
            self.metrics.requests.labels(name, endpoint, failure.code).inc()
            raise RunFailed(failure)
        return task.result()

    async def _predict(
        self, program: ServedProgram, inputs: dict[str, Any], endpoint: str
    ) -> dspy.Prediction:
        count = self.metrics.requests.labels
        caller = current_caller()
        if refusal := self.admit(caller):
            count(program.name, endpoint, refusal.code).inc()
            raise RunFailed(refusal)
        try:
            async with asyncio.timeout(self.limits.deadline):
                with self._context(program):
                    prediction = await program.predict(inputs)
        except TimeoutError as exc:
            count(program.name, endpoint, TIMED_OUT.code).inc()
            raise RunFailed(TIMED_OUT) from exc
        except Exception as exc:
            failure = describe(exc)
            count(program.name, endpoint, failure.code).inc()
            raise RunFailed(failure) from exc
        finally:
            self._release(caller)
        count(program.name, endpoint, "ok").inc()
        self.metrics.record_usage(program.name, prediction)
        return prediction

    async def batch(
        self,
        program: ServedProgram,
        bodies: Sequence[BaseModel],
        to_response: ToResponse,
        to_result: type[R],
        receive: Receive,
    ) -> list[R]:
        """Run every input, ``batch_parallelism`` at a time; results in input order.

        ``to_result`` is the program's batch result model: ``outputs`` or ``error``.
        The whole batch stops when its client leaves (see :meth:`predict`).
        """
        if len(bodies) > self.limits.batch_max_items:
            raise RequestValidationError(
                [
                    {
                        "type": "too_long",
                        "loc": ("body", "inputs"),
                        "msg": f"at most {self.limits.batch_max_items} inputs per batch",
                        "input": None,
                    }
                ]
            )
        # Refuse the whole batch before running any of it.
        checked = [
            checked_inputs(body, self.limits.max_input_chars, ("body", "inputs", index))
            for index, body in enumerate(bodies)
        ]
        slots = asyncio.Semaphore(self.limits.batch_parallelism)

        async def one(inputs: dict[str, Any]) -> R:
            async with slots:
                try:
                    prediction = await self._predict(program, inputs, "batch")
                except RunFailed as failed:
                    error = ErrorBody(code=failed.failure.code, message=failed.failure.message)
                    return to_result(error=error)
                return to_result(outputs=to_response(prediction))

        async def every() -> list[R]:
            return list(await asyncio.gather(*(one(inputs) for inputs in checked)))

        return await self._while_wanted(every(), receive, program.name, "batch")

    async def stream(
        self, program: ServedProgram, body: BaseModel, to_response: ToResponse
    ) -> Response:
        """Start a run; answer with its event stream, or an error if it fails at once."""
        inputs = checked_inputs(body, self.limits.max_input_chars)
        caller = current_caller()
        if refusal := self.admit(caller):
            self.metrics.requests.labels(program.name, "stream", refusal.code).inc()
            return error_response(refusal)
        run = _Run(self, program.name, caller)
        run.task = asyncio.create_task(self._run(program, inputs, to_response, run))
        try:
            # Hold the status line until the first event, so that an early failure
            # is an HTTP error, but not past the first keep-alive.
            async with asyncio.timeout(self.limits.keepalive):
                first: Event | _End | bytes = await run.queue.get()
        except TimeoutError:
            first = KEEPALIVE_COMMENT
        except BaseException:
            await run.close()
            raise
        if isinstance(first, _End) and first.failure is not None:
            await run.close()
            return error_response(first.failure)
        return _RunResponse(run, self._frames(first, run))

    async def _run(
        self,
        program: ServedProgram,
        inputs: dict[str, Any],
        to_response: ToResponse,
        run: "_Run",
    ) -> None:
        """Iterate the program (in this task only) and queue its events."""
        queue = run.queue
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
                with self._context(program):
                    async with contextlib.aclosing(program.events(inputs)) as items:
                        async for item in items:
                            if isinstance(item, TokenEvent):
                                run.tokens += 1
                                if run.tokens == 1:
                                    waited = time.perf_counter() - run.started
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
            run.outcome = "ok"
            await queue.put(DoneEvent())
            await queue.put(_End())
        except _ReaderBehind:
            logger.warning("%s: the client stopped reading; run stopped", program.name)
            run.outcome = SLOW_READER.code
            run.lost = _End(SLOW_READER)  # the queue is full: the reader finds it after the rest
            run.release()
        except TimeoutError:
            logger.warning("%s: run timed out", program.name)
            run.outcome = TIMED_OUT.code
            await queue.put(_End(TIMED_OUT))
        except Exception as exc:
            failure = describe(exc)
            logger.log(
                failure.log_level, "%s: run failed: %s", program.name, failure.code, exc_info=exc
            )
            run.outcome = failure.code
            await queue.put(_End(failure))

    async def _frames(self, first: Event | _End | bytes, run: "_Run") -> AsyncIterator[bytes]:
        """The SSE body: numbered events, keep-alives, and a last error if the run fails."""
        number = 0
        item = first
        try:
            while not isinstance(item, _End):
                if isinstance(item, bytes):
                    yield item  # a keep-alive comment carries no id
                else:
                    number += 1
                    yield _frame(item, number)
                item = await self._next(run)
            if item.failure is not None:
                error = ErrorEvent(code=item.failure.code, message=item.failure.message)
                yield _frame(error, number + 1)
        finally:
            await run.close()

    async def _next(self, run: "_Run") -> Event | _End | bytes:
        """The next queued item, a keep-alive after silence, or the end on shutdown."""
        if self._grace_over.is_set():
            return _End(SHUTTING_DOWN)
        queue = run.queue
        try:
            return queue.get_nowait()
        except asyncio.QueueEmpty:
            pass
        if run.lost is not None:
            return run.lost
        try:
            async with asyncio.timeout(self.limits.keepalive):
                return await queue.get()
        except TimeoutError:
            return KEEPALIVE_COMMENT

    async def drain(self) -> None:
        """Refuse new runs; give open ones ``shutdown_grace`` seconds, then end them."""
        self.draining = True
        if self.active == 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.limits.shutdown_grace):
                await self._drained.wait()
                return
        self._grace_over.set()
        for task in list(self.working):  # JSON and batch requests answer 503 shutting_down
            task.cancel()
        for run in list(self.open):  # wake readers waiting for their next event
            with contextlib.suppress(asyncio.QueueFull):
                run.queue.put_nowait(_End(SHUTTING_DOWN))

    def drain_on_signals(self) -> None:
        """Start draining when the process gets SIGTERM or SIGINT, then let the server stop.

        The server's own handler (uvicorn's) still runs after ours: it stops
        accepting connections and waits for the open responses, which drain()
        ends within the grace period. Signals reach only the main thread: an app
        run elsewhere (a test client, an embedding server) is drained by its host.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)

            def handler(signum: int, frame: Any, previous: Any = previous) -> None:
                loop.call_soon_threadsafe(lambda: loop.create_task(self.drain()))
                if callable(previous):
                    previous(signum, frame)

            signal.signal(sig, handler)


class _Run:
    """One streamed run: its task and queue, and the slot it holds until closed."""

    def __init__(self, runs: Runs, name: str, caller: str) -> None:
        self.runs = runs
        self.name = name
        self.caller = caller
        self.holding = True  # its slot, until released
        self.queue: asyncio.Queue[Event | _End] = asyncio.Queue(runs.limits.stream_buffer)
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        self.started = time.perf_counter()
        self.first_token: float | None = None
        self.tokens = 0
        self.outcome = "disconnected"  # until the run says how it ended
        self.lost: _End | None = None  # how the run ended, when its queue had no room to say
        runs.open.add(self)
        runs.metrics.active_streams.inc()

    def release(self) -> None:
        """Free the run's slot (when it ends, or its client falls behind); safe to call twice."""
        if self.holding:
            self.holding = False
            self.runs._release(self.caller)

    async def close(self) -> None:
        """Stop the run (if it still runs) and free its slot; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        self.runs.open.discard(self)
        self.release()
        if self.task is not None:
            await _stop(self.task)
        metrics = self.runs.metrics
        metrics.active_streams.dec()
        metrics.requests.labels(self.name, "stream", self.outcome).inc()
        metrics.stream_seconds.labels(self.name).observe(time.perf_counter() - self.started)
        metrics.tokens.labels(self.name).inc(self.tokens)


class _RunResponse(EventSourceResponse):
    """The event stream of a run, which closes the run however the response ends.

    The body generator's own ``finally`` does not run if the client leaves
    before the first chunk is sent (an async generator never started is never
    finalized), so the response closes the run too.
    """

    def __init__(self, run: _Run, frames: AsyncIterator[bytes]) -> None:
        super().__init__(frames, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._run = run

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._run.close()


def _frame(event: Event | bytes, number: int) -> bytes:
    if isinstance(event, bytes):
        return event
    return format_sse_event(data_str=event.model_dump_json(), event=event.event, id=str(number))


class _ReaderBehind(Exception):
    """The client stayed ``reader_timeout`` seconds behind by a full buffer."""


async def _wait_for_reader(queue: asyncio.Queue[Any], item: Any, patience: float) -> None:
    """Queue ``item`` once the reader makes room, or raise :class:`_ReaderBehind`."""
    try:
        async with asyncio.timeout(patience):
            await queue.put(item)
    except TimeoutError:
        raise _ReaderBehind from None


async def _disconnected(receive: Receive) -> None:
    """Return when the client has disconnected (the body was read before)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _stop(task: asyncio.Task[Any]) -> None:
    """Cancel a run's task and wait for it to unwind."""
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
