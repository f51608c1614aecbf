"""A streamed run: one task that iterates the program and writes its events to the run's log.

The run does not belong to a connection: readers follow its log (``sse.py``),
and it goes on while nobody reads it, for ``grace`` seconds, so that a client
that reconnects resumes it. So:

- the run's pace is the program's, never a reader's: a slow or absent reader
  costs the log's bounded memory (``runlog.py``), not the run's slot;
- the run holds its admission slot until it ends, not until a response ends;
- it ends by itself (done, an error, a timeout), when it is cancelled (a
  client's cancel, from any replica), when nobody read it for ``grace``
  seconds, or on shutdown; each end writes one terminal event to the log;
- stopping a run, for whatever reason, is cancelling its task (note 1).

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

from .admission import Admission
from .errors import Failure, describe
from .events import DoneEvent, ErrorEvent, Event, PredictionEvent, TokenEvent
from .limits import TIMED_OUT
from .logs import current_request_id, run_id_bound
from .metrics import LMCallMetrics, Metrics, run_context
from .program import ServedProgram
from .runlog import ABANDONED, CANCELLED, DISCONNECTED, LogError, RunLog, RunRecord, RunStatus
from .tracing import run_span

# Every run's outcome is logged by one logger, the runs' (``<package>.runtime.runs``),
# whichever module reports it, so that one filter sees them all.
logger = logging.getLogger(f"{__package__}.runs")

ToResponse = Callable[[dspy.Prediction], BaseModel]


class StreamedRun:
    """One streamed run: its task, its log, its readers, and the slot it holds until it ends.

    It is in ``running`` (by id) from its start until it has ended, for
    cancels and the drain to find it.
    """

    def __init__(
        self,
        run_id: str,
        name: str,
        caller: str,
        admission: Admission,
        metrics: Metrics,
        log: RunLog,
        running: dict[str, "StreamedRun"],
    ) -> None:
        self.run_id = run_id
        self.name = name
        self.caller = caller
        self.admission = admission
        self.limits = admission.limits
        self.metrics = metrics
        self.log = log
        self.task: asyncio.Task[None] | None = None
        self.failure: Failure | None = None  # how it failed, once it has
        self.ended = asyncio.Event()
        self.started = time.perf_counter()
        self.tokens = 0
        self.readers = 0
        self._abandon: asyncio.TimerHandle | None = None
        self._stop_reason: Failure | None = None
        self._running = running

    async def start(
        self,
        program: ServedProgram,
        inputs: dict[str, Any],
        to_response: ToResponse,
        owner: str | None,
    ) -> None:
        """Register the run in the log and start its task (raises ``LogError``)."""
        await self.log.create(RunRecord(self.run_id, self.name, owner))
        self._running[self.run_id] = self
        self.metrics.active_streams.inc()
        with run_id_bound(self.run_id):  # the task copies the context: its events carry the id
            self.task = asyncio.create_task(self._iterate(program, inputs, to_response))

    async def _iterate(
        self, program: ServedProgram, inputs: dict[str, Any], to_response: ToResponse
    ) -> None:
        """Iterate the program (in this task only) and log its events; then end the run."""
        clock = RunClock(self.limits.deadline, self.limits.idle_timeout, self._time_out)
        result: dict[str, Any] | None = None
        # The run's span (a null context when tracing is off) is current in this task:
        # DSPy's module, LM and tool spans nest beneath it.
        span = run_span(program.name, "stream", self.run_id, current_request_id())
        try:
            with span:
                try:
                    lm_calls = LMCallMetrics(self.metrics, program.name)
                    with clock, run_context():
                        events = program.events(inputs, lm_calls)
                        async with contextlib.aclosing(events) as items:
                            async for item in items:
                                if self._stop_reason is not None:
                                    continue  # stopping: the cancel lands at the next await
                                clock.touch()
                                event = self._event(item, to_response)
                                if isinstance(event, PredictionEvent):
                                    result = event.outputs
                                await self._append(event)
                except asyncio.CancelledError:
                    reason = self._stop_reason or CANCELLED
                    if reason is TIMED_OUT:
                        logger.warning("%s: run timed out", program.name)
                    else:
                        logger.info("%s: run stopped: %s", program.name, reason.code)
                    status = (
                        RunStatus.CANCELLED
                        if reason in (CANCELLED, ABANDONED, DISCONNECTED)
                        else RunStatus.FAILED
                    )
                    await self._end(status, reason)
                except Exception as exc:
                    failure = describe(exc)
                    logger.log(
                        failure.log_level,
                        "%s: run failed: %s",
                        program.name,
                        failure.code,
                        exc_info=exc,
                    )
                    await self._end(RunStatus.FAILED, failure)
                else:
                    await self._end(RunStatus.DONE, None, result)
        finally:
            self._close()

    def _time_out(self) -> None:
        """The run's clock ran out: stop the run (by cancelling its task, note 1)."""
        if self._stop_reason is None and self.task is not None:
            self._stop_reason = TIMED_OUT
            self.task.cancel()

    async def _append(self, event: Event) -> None:
        """Log ``event``; if the log refuses it, stop the run (by cancelling, note 1).

        The log refuses when another replica ended the run (it took it for
        lost) or Redis is down: nobody could read what the run would write.
        Raising here would close the program's generator at its ``yield``,
        outside its own awaits, which ``streamify`` does not survive; so the
        run's task cancels itself, and the cancel lands inside the program.
        """
        try:
            await self.log.append(self.run_id, event.event, event.model_dump_json())
        except LogError as exc:
            logger.warning("%s: run stopped, its log failed: %s", self.name, exc.failure.code)
            self._stop_reason = exc.failure
            task = asyncio.current_task()
            assert task is not None
            task.cancel()

    def _event(self, item: Event | dspy.Prediction, to_response: ToResponse) -> Event:
        if isinstance(item, TokenEvent):
            self.tokens += 1
            if self.tokens == 1:
                waited = time.perf_counter() - self.started
                self.metrics.first_token_seconds.labels(self.name).observe(waited)
        elif isinstance(item, dspy.Prediction):
            self.metrics.record_usage(self.name, item)
            return PredictionEvent(outputs=to_response(item).model_dump(mode="json"))
        return item

    async def _end(
        self, status: RunStatus, failure: Failure | None, result: dict[str, Any] | None = None
    ) -> None:
        """Write the run's terminal event: ``done``, or ``error`` for ``failure``."""
        self.failure = failure
        if failure is None:
            event: Event = DoneEvent()
            error = None
        else:
            event = ErrorEvent(code=failure.code, message=failure.message)
            error = {"code": failure.code, "message": failure.message}
        try:
            await self.log.finish(
                self.run_id,
                status,
                event.event,
                event.model_dump_json(),
                result=result,
                error=error,
            )
        except LogError as exc:
            logger.warning("%s: the run's end could not be logged: %s", self.name, exc)

    def _close(self) -> None:
        """Free the slot and count the run, once it has ended."""
        self._running.pop(self.run_id, None)
        if self._abandon is not None:
            self._abandon.cancel()
        self.admission.release(self.caller)
        outcome = "ok" if self.failure is None else self.failure.code
        metrics = self.metrics
        metrics.active_streams.dec()
        metrics.requests.labels(self.name, "stream", outcome).inc()
        metrics.stream_seconds.labels(self.name).observe(time.perf_counter() - self.started)
        metrics.tokens.labels(self.name).inc(self.tokens)
        self.ended.set()

    async def stop(self, reason: Failure) -> None:
        """End the run now, with ``reason`` as its error; wait until it has ended."""
        if self.task is None or self.task.done():
            return
        if self._stop_reason is None:  # a second stop waits for the first
            self._stop_reason = reason
            self.task.cancel()
        await self.ended.wait()

    def attach(self) -> None:
        """A reader of this process started to read the run."""
        self.readers += 1
        if self._abandon is not None:
            self._abandon.cancel()
            self._abandon = None

    def detach(self) -> None:
        """A reader left; nobody reading for ``grace`` seconds ends the run."""
        self.readers -= 1
        if self.readers == 0 and not self.ended.is_set():
            self._schedule_abandon(self.limits.grace)

    def _schedule_abandon(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        self._abandon = loop.call_later(delay, lambda: loop.create_task(self._abandon_if_unread()))

    async def _abandon_if_unread(self) -> None:
        self._abandon = None
        if self.readers or self.ended.is_set():
            return
        try:
            elsewhere = await self.log.read_elsewhere(self.run_id)
        except LogError:
            elsewhere = False
        if elsewhere:  # a reader on another replica: look again shortly
            self._schedule_abandon(max(self.limits.grace, 0.5))
            return
        await self.stop(ABANDONED)


class RunClock:
    """A run's deadline and idle timeout (seconds, or None), as one timer.

    The idle timeout starts again with every event, dozens of times a second
    per run; moving a timer each time (``asyncio.Timeout.reschedule``) costs a
    heap entry and a cancelled handle per event. So an event only notes the
    time (:meth:`touch`), and the timer looks when it fires: it is set again for
    the idle timeout counted from the last event, or it calls ``expire``.
    """

    def __init__(
        self, deadline: float | None, idle: float | None, expire: Callable[[], None]
    ) -> None:
        self._loop = asyncio.get_running_loop()
        now = self._loop.time()
        self._deadline = now + deadline if deadline else None
        self._idle = idle or None
        self._expire = expire
        self.last = now  # when the last event came
        self._timer: asyncio.TimerHandle | None = None

    def touch(self) -> None:
        """An event came: the idle timeout counts from now."""
        self.last = self._loop.time()

    def _due(self) -> float | None:
        idle = self.last + self._idle if self._idle else None
        if idle is None or self._deadline is None:
            return idle or self._deadline
        return min(idle, self._deadline)

    def _fire(self) -> None:
        due = self._due()
        if due is not None and due > self._loop.time():
            self._timer = self._loop.call_at(due, self._fire)  # an event came meanwhile
        else:
            self._timer = None
            self._expire()

    def __enter__(self) -> "RunClock":
        due = self._due()
        if due is not None:
            self._timer = self._loop.call_at(due, self._fire)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def error_data(failure: Failure, run_id: str) -> str:
    """An ``error`` event's data for a failure told only to one reader (not logged)."""
    return ErrorEvent(code=failure.code, message=failure.message, run_id=run_id).model_dump_json()
