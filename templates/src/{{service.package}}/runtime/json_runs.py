"""JSON and batch requests: runs answered in one body, kept only while their client waits.

A plain route's handler goes on after its client disconnects (nothing cancels
it), holding a slot and paying for the LM; so a JSON request's run, or a whole
batch, runs in a task of its own, raced against the client's
``http.disconnect``. That task is cancelled when the client leaves, or when the
shutdown's grace period is over; the request then answers 503
``shutting_down`` (a client that left reads nothing).
"""

import asyncio
import contextlib
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import dspy
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.types import Receive

from .admission import SHUTTING_DOWN, Admission
from .errors import Failure, RunFailed, describe
from .http import ErrorBody
from .inputs import checked_inputs
from .limits import TIMED_OUT
from .logs import current_request_id
from .metrics import LMCallMetrics, Metrics, run_context
from .program import ServedProgram
from .run import ToResponse
from .security import current_caller
from .tracing import run_span

T = TypeVar("T")
R = TypeVar("R", bound=BaseModel)

CLIENT_GONE = Failure(499, "disconnected", "The client left before the run ended.")


class JsonRuns:
    """The JSON and batch requests in progress, each in a task of its own."""

    def __init__(self, admission: Admission, metrics: Metrics) -> None:
        self.admission = admission
        self.limits = admission.limits
        self.metrics = metrics
        self.working: set[asyncio.Task[Any]] = set()

    async def predict(
        self, program: ServedProgram, inputs: dict[str, Any], receive: Receive
    ) -> dspy.Prediction:
        """Run to completion under the limits; raise :class:`RunFailed` on failure.

        ``receive`` is the request's ASGI receive, read to learn that the client left.
        """
        return await self._while_wanted(
            self._complete(program, inputs, "json"), receive, program.name, "json"
        )

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
                    prediction = await self._complete(program, inputs, "batch")
                except RunFailed as failed:
                    error = ErrorBody(code=failed.failure.code, message=failed.failure.message)
                    return to_result(error=error)
                return to_result(outputs=to_response(prediction))

        async def every() -> list[R]:
            return list(await asyncio.gather(*(one(inputs) for inputs in checked)))

        return await self._while_wanted(every(), receive, program.name, "batch")

    def cancel(self) -> None:
        """Cancel every request still running (the grace period is over)."""
        for task in list(self.working):
            task.cancel()

    async def _while_wanted(
        self, work: Coroutine[Any, Any, T], receive: Receive, name: str, endpoint: str
    ) -> T:
        """Run ``work`` in a task that is cancelled if the client leaves or shutdown ends it."""
        task = asyncio.ensure_future(work)
        watcher = asyncio.ensure_future(disconnected(receive))
        self.working.add(task)
        try:
            await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.working.discard(task)
            watcher.cancel()
            if not task.done():  # the client left, or this handler itself was cancelled
                await stop(task)
        if task.cancelled():
            failure = SHUTTING_DOWN if self.admission.grace_over else CLIENT_GONE
            self.metrics.requests.labels(name, endpoint, failure.code).inc()
            raise RunFailed(failure)
        return task.result()

    async def _complete(
        self, program: ServedProgram, inputs: dict[str, Any], endpoint: str
    ) -> dspy.Prediction:
        """One run to completion: admitted, under the deadline, counted under ``endpoint``."""
        count = self.metrics.requests.labels
        caller = current_caller()
        if refusal := self.admission.admit(caller):
            count(program.name, endpoint, refusal.code).inc()
            raise RunFailed(refusal)
        try:
            async with asyncio.timeout(self.limits.deadline):
                with (
                    run_span(program.name, endpoint, request_id=current_request_id()),
                    run_context(LMCallMetrics(self.metrics, program.name)),
                ):
                    prediction = await program.predict(inputs)
        except TimeoutError as exc:
            count(program.name, endpoint, TIMED_OUT.code).inc()
            raise RunFailed(TIMED_OUT) from exc
        except Exception as exc:
            failure = describe(exc)
            count(program.name, endpoint, failure.code).inc()
            raise RunFailed(failure) from exc
        finally:
            self.admission.release(caller)
        count(program.name, endpoint, "ok").inc()
        self.metrics.record_usage(program.name, prediction)
        return prediction


async def disconnected(receive: Receive) -> None:
    """Return when the client has disconnected (the body was read before)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def stop(task: asyncio.Task[Any]) -> None:
    """Cancel a run's task and wait for it to unwind."""
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
