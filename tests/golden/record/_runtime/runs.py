"""Every run of the process, as the routes and the app see it: one small facade.

A stream is a race between four parties: the program, the client, the clock
(deadline, idle timeout, keep-alive) and the server's shutdown. Each part has
its module:

- ``limits.py``: the numbers (``RunLimits``) and what a client is told past each;
- ``admission.py``: slots per caller, 503/429 at once when full, the drain on SIGTERM;
- ``run.py``: a streamed run, one task that iterates the program into a bounded
  queue, so a slow reader holds a bounded number of events, and only for
  ``reader_timeout`` seconds; a run is stopped only by cancelling its task;
- ``sse.py``: the queue read out as SSE frames and keep-alives, the status line
  held until the first event so that an early failure is a plain HTTP error;
- ``json_runs.py``: JSON and batch requests, whose runs end when the client
  leaves or the shutdown's grace period is over.

Stopping a run, for whatever reason, is cancelling its task, and every
response closes its run before it returns, so no run outlives its response.
"""

from collections.abc import Sequence

import dspy
from pydantic import BaseModel
from starlette.responses import Response
from starlette.types import Receive

from .admission import SHUTTING_DOWN, Admission, drain_on_signals
from .http import error_response
from .inputs import checked_inputs
from .json_runs import JsonRuns, R
from .limits import RunLimits
from .metrics import Metrics
from .program import ServedProgram
from .run import StreamedRun, ToResponse
from .security import current_caller
from .sse import respond


class Runs:
    """Every run of the process: admission, limits and graceful shutdown."""

    def __init__(self, limits: RunLimits, metrics: Metrics) -> None:
        self.limits = limits
        self.metrics = metrics
        self.admission = Admission(limits)
        self.json_runs = JsonRuns(self.admission, metrics)
        self.open: set[StreamedRun] = set()  # streams, until their response ends

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
        self, program: ServedProgram, body: BaseModel, to_response: ToResponse
    ) -> Response:
        """Start a run; answer with its event stream, or an error if it fails at once."""
        inputs = checked_inputs(body, self.limits.max_input_chars)
        caller = current_caller()
        if refusal := self.admission.admit(caller):
            self.metrics.requests.labels(program.name, "stream", refusal.code).inc()
            return error_response(refusal)
        run = StreamedRun(program.name, caller, self.admission, self.metrics, self.open)
        run.start(program, inputs, to_response)
        return await respond(run, self.limits.keepalive)

    async def drain(self) -> None:
        """Refuse new runs; give open ones ``shutdown_grace`` seconds, then end them."""
        if await self.admission.drain():
            return
        self.json_runs.cancel()  # JSON and batch requests answer 503 shutting_down
        for run in list(self.open):  # wake readers waiting for their next event
            run.wake_reader(SHUTTING_DOWN)

    def drain_on_signals(self) -> None:
        """Start :meth:`drain` on SIGTERM or SIGINT (see ``admission.drain_on_signals``)."""
        drain_on_signals(self.drain)
