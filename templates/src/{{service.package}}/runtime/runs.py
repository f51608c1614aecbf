"""Every run of the process, as the routes and the app see it: one small facade.

A stream is a race between four parties: the program, the client, the clock
(deadline, idle timeout, keep-alive) and the server's shutdown. Each part has
its module:

- ``limits.py``: the numbers (``RunLimits``) and what a client is told past each;
- ``admission.py``: slots per caller, 503/429 at once when full, the drain on SIGTERM;
- ``run.py``: a streamed run, one task that iterates the program and writes its
  events to the run's log; it outlives its connection for ``grace`` seconds;
- ``runlog.py`` (``memory_log.py``, ``redis_log.py``): the logs readers follow,
  in memory or in Redis, so a client resumes, and any replica serves any run;
- ``reading.py``: one client reading one run (``OpenRun``): its items, keep-alives,
  presence, and a new run's first item read ahead, so that an early failure is
  a plain HTTP error; every protocol reads runs through it;
- ``sse.py``: the native protocol, a reader's items as SSE frames (``id: <run>-<n>``);
  ``protocols/``: the other protocols, each an encoding of the same events;
- ``json_runs.py``: JSON and batch requests, whose runs end when the client
  leaves or the shutdown's grace period is over.

Stopping a run, for whatever reason, is cancelling its task.
"""

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Sequence

import dspy
from pydantic import BaseModel
from starlette.responses import Response
from starlette.types import Receive

from .admission import SHUTTING_DOWN, Admission, drain_on_signals
from .errors import Failure, RunFailed
from .http import error_response
from .inputs import checked_inputs
from .json_runs import JsonRuns, R
from .limits import RunLimits
from .metrics import Metrics
from .program import ServedProgram
from .reading import RUN_ID_HEADER, OpenRun, Stream, tick_for
from .run import StreamedRun, ToResponse
from .runlog import CANCELLED, RUN_NOT_FOUND, Batch, LogError, RunLog, RunRecord, RunStatus
from .security import current_caller
from .sse import respond

_EVENT_ID = re.compile(r"^([0-9a-f]{32})-([0-9]{1,12})$")
BAD_EVENT_ID = Failure(
    400, "bad_last_event_id", "Last-Event-ID is not an event id of this service: '<run>-<n>'."
)


def parse_event_id(event_id: str) -> tuple[str, int] | None:
    """The run and position an event id names, or None if it is not one of ours."""
    match = _EVENT_ID.match(event_id.strip())
    return (match[1], int(match[2])) if match else None


class Runs:
    """Every run of the process: admission, limits, the runs' logs and graceful shutdown.

    ``scoped``: a run is read, resumed and cancelled only by the caller that
    started it (with API keys on, the same key); else by anyone with its id.
    """

    def __init__(
        self, limits: RunLimits, metrics: Metrics, log: RunLog, *, scoped: bool = False
    ) -> None:
        self.limits = limits
        self.metrics = metrics
        self.log = log
        self.scoped = scoped
        self.admission = Admission(limits)
        self.json_runs = JsonRuns(self.admission, metrics)
        self.running: dict[str, StreamedRun] = {}  # streamed runs of this process, by id
        self.tick = tick_for(limits.keepalive)
        self._stops: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Open the runs' log (Redis: connect, heartbeat, listen for cancels)."""
        await self.log.start(self._cancel_here)

    async def close(self) -> None:
        await self.log.close()

    @property
    def active(self) -> int:
        """Runs holding a slot now."""
        return self.admission.active

    @property
    def draining(self) -> bool:
        """Whether the process is shutting down (no run is admitted)."""
        return self.admission.draining

    async def predict(
        self, program: ServedProgram, body: BaseModel, receive: Receive
    ) -> dspy.Prediction:
        """Run to completion under the limits; raise ``RunFailed`` on failure.

        ``receive`` is the request's ASGI receive, read to learn that the client left.
        """
        inputs = checked_inputs(body, self.limits.max_input_chars)
        return await self.json_runs.predict(program, inputs, receive)

    async def batch(
        self,
        program: ServedProgram,
        bodies: Sequence[BaseModel],
        to_response: ToResponse,
        to_result: type[R],
        receive: Receive,
    ) -> list[R]:
        """Run every input, ``batch_parallelism`` at a time; results in input order."""
        return await self.json_runs.batch(program, bodies, to_response, to_result, receive)

    async def stream(
        self,
        program: ServedProgram,
        body: BaseModel,
        to_response: ToResponse,
        last_event_id: str | None = None,
    ) -> Response:
        """Start a run and answer with its native event stream, or an error if it fails at once.

        With ``last_event_id`` (a client reconnecting), continue that run of
        ``program`` after that event instead: never a second run.
        """
        if last_event_id:
            position = parse_event_id(last_event_id)
            if position is None:
                return error_response(BAD_EVENT_ID)
            return await self.join(*position, program=program.name)
        try:
            reader = await self.open(program, body, to_response)
        except RunFailed as exc:
            response = error_response(exc.failure)
            if exc.run_id is not None:
                response.headers[RUN_ID_HEADER] = exc.run_id
            return response
        return respond(reader)

    async def open(
        self,
        program: ServedProgram,
        body: BaseModel,
        to_response: ToResponse,
        *,
        cancel_on_close: bool = False,
    ) -> OpenRun:
        """Start a run and read it: the reader, once the run's first item is in hand.

        Raises ``RunFailed`` when the run is refused (full, draining, the store
        down) or fails before its first event (within the first keep-alive),
        and ``RequestValidationError`` when an input is too long. The caller
        must close the reader (``ReaderResponse`` does); with
        ``cancel_on_close``, closing it before the run ended stops the run, for
        protocols whose clients cannot resume.
        """
        inputs = checked_inputs(body, self.limits.max_input_chars)
        caller = current_caller()
        if refusal := self.admission.admit(caller):
            self.metrics.requests.labels(program.name, "stream", refusal.code).inc()
            raise RunFailed(refusal)
        run = StreamedRun(
            uuid.uuid4().hex,
            program.name,
            caller,
            self.admission,
            self.metrics,
            self.log,
            self.running,
        )
        try:
            await run.start(program, inputs, to_response, caller if self.scoped else None)
            entries = await self.log.follow(run.run_id, 0, self.tick)
        except LogError as exc:
            if run.task is None:  # never started: give its slot back here
                self.admission.release(caller)
            else:
                await run.stop(exc.failure)
            self.metrics.requests.labels(program.name, "stream", exc.failure.code).inc()
            raise RunFailed(exc.failure) from None
        reader = OpenRun(
            self._stream(run.run_id, entries), run=run, cancel_on_close=cancel_on_close
        )
        await reader.enter()
        try:
            first = await reader.read_first()
        except BaseException:
            await reader.aclose()
            raise
        if isinstance(first, list) and first[0].event == "error" and run.failure is not None:
            await reader.aclose()
            raise RunFailed(run.failure, run.run_id)
        return reader

    async def reader(self, run_id: str, after: int, program: str | None = None) -> OpenRun:
        """A reader of a run after position ``after``, from any replica (``RunFailed`` if none)."""
        await self.record(run_id, program)
        try:
            entries = await self.log.follow(run_id, after, self.tick)
        except LogError as exc:
            raise RunFailed(exc.failure) from None
        reader = OpenRun(self._stream(run_id, entries))
        await reader.enter()
        return reader

    async def join(self, run_id: str, after: int, program: str | None = None) -> Response:
        """The native event stream of a run after position ``after``, from any replica."""
        try:
            reader = await self.reader(run_id, after, program)
        except RunFailed as exc:
            return error_response(exc.failure)
        return respond(reader)

    def _stream(self, run_id: str, entries: AsyncIterator[Batch | None]) -> Stream:
        limits = self.limits
        return Stream(
            run_id,
            entries,
            self._presence(run_id),
            self.admission,
            limits.keepalive,
            int(limits.reconnect_delay * 1000),
            limits.flush_interval,
        )

    @contextlib.asynccontextmanager
    async def _presence(self, run_id: str) -> AsyncIterator[None]:
        """Count the block as a reader of the run, here or at its owner's."""
        run = self.running.get(run_id)
        if run is None:
            async with self.log.reading(run_id):
                yield
            return
        run.attach()
        try:
            yield
        finally:
            run.detach()

    async def record(self, run_id: str, program: str | None = None) -> RunRecord:
        """The run's record, if the caller may see it; else ``RunFailed`` ``run_not_found``."""
        try:
            record = await self.log.get(run_id)
        except LogError as exc:
            raise RunFailed(exc.failure) from None
        caller = current_caller()
        if (
            record is None
            or (program is not None and record.program != program)
            or (record.caller is not None and record.caller != caller)
        ):
            raise RunFailed(RUN_NOT_FOUND)  # another's run is as unknown as none
        return record

    async def cancel(self, run_id: str) -> RunRecord:
        """Cancel the run now, wherever it runs; its record after."""
        await self.record(run_id)
        run = self.running.get(run_id)
        try:
            if run is not None:
                await run.stop(CANCELLED)
            else:
                await self.log.request_cancel(run_id)
                return await self._ended(run_id, within=2.0)
        except LogError as exc:
            raise RunFailed(exc.failure) from None
        return await self.record(run_id)

    async def _ended(self, run_id: str, within: float) -> RunRecord:
        """The run's record once it has ended, or as it is after ``within`` seconds."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + within
        record = await self.record(run_id)
        # Its owner is another replica: nothing here to wait on but the record.
        while record.status is RunStatus.RUNNING and loop.time() < give_up:
            await asyncio.sleep(0.05)
            record = await self.record(run_id)
        return record

    def _cancel_here(self, run_id: str) -> None:
        """Cancel a run of this process, asked from another replica."""
        run = self.running.get(run_id)
        if run is not None:
            task = asyncio.create_task(run.stop(CANCELLED))
            self._stops.add(task)
            task.add_done_callback(self._stops.discard)

    async def drain(self) -> None:
        """Refuse new runs; give open ones ``shutdown_grace`` seconds, then end them."""
        if await self.admission.drain():
            return
        self.json_runs.cancel()  # JSON and batch requests answer 503 shutting_down
        await asyncio.gather(*(run.stop(SHUTTING_DOWN) for run in list(self.running.values())))

    def drain_on_signals(self) -> None:
        """Start :meth:`drain` on SIGTERM or SIGINT (see ``admission.drain_on_signals``)."""
        drain_on_signals(self.drain)
