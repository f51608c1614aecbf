"""What the runtime's unit tests share: fakes of a request and a program, and readers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import dspy
from forge_service.runtime.events import Event, TokenEvent
from forge_service.runtime.inputs import Inputs
from forge_service.runtime.limits import RunLimits
from forge_service.runtime.memory_log import MemoryLog
from forge_service.runtime.metrics import Metrics
from forge_service.runtime.outputs import Outputs
from forge_service.runtime.runs import Runs

from dspy_forge.spec.settings import declared


class Ask(Inputs):
    question: str


class Answer(Outputs):
    answer: str


def limits(**changes: Any) -> RunLimits:
    """RunLimits with timeouts short enough for tests, and ``changes``."""
    base: dict[str, Any] = {
        **{setting.limit: setting.default for setting in declared() if setting.limit},
        "deadline": 5.0,
        "idle_timeout": 5.0,
        "keepalive": 5.0,
        "shutdown_grace": 5.0,
    }
    return RunLimits(**{**base, **changes})


def new_runs(metrics: Metrics, *, scoped: bool = False, **changes: Any) -> Runs:
    """Runs over an in-memory log, with ``limits(**changes)``."""
    held = limits(**changes)
    log = MemoryLog(max_events=held.log_max_events, ttl=held.log_ttl)
    return Runs(held, metrics, log, scoped=scoped)


def count(metrics: Metrics, program: str, endpoint: str, outcome: str) -> float:
    """The value of ``dspy_requests`` for one program, endpoint and outcome."""
    labels = {"program": program, "endpoint": endpoint, "outcome": outcome}
    return metrics.registry.get_sample_value("dspy_requests_total", labels) or 0.0


class Receive:
    """A request's ASGI receive after its body was read: it waits until the client leaves."""

    def __init__(self) -> None:
        self._gone = asyncio.Event()

    def leave(self) -> None:
        self._gone.set()

    async def __call__(self) -> dict[str, Any]:
        await self._gone.wait()
        return {"type": "http.disconnect"}


class FakeProgram:
    """Stands for a ``ServedProgram``: scripted events and predictions, no LM.

    ``script`` is an async generator function of the inputs (the stream);
    ``predict`` a coroutine function of them (the JSON run). ``iterated_in`` and
    ``closed_in`` record the tasks that iterated and closed the stream,
    ``yielded`` how many items it gave, and ``cancelled`` whether the stream or
    the prediction was cancelled.
    """

    def __init__(
        self,
        script: Callable[[dict[str, Any]], AsyncIterator[Any]] | None = None,
        predict: Callable[[dict[str, Any]], Awaitable[dspy.Prediction]] | None = None,
        name: str = "qa",
    ) -> None:
        self.name = name
        self._script = script or tokens("Par", "is")
        self._predict = predict or answer("Paris")
        self.yielded = 0
        self.cancelled = False
        self.iterated_in: asyncio.Task[Any] | None = None
        self.closed_in: asyncio.Task[Any] | None = None

    async def events(self, inputs: dict[str, Any], lm_calls: Any = None) -> AsyncIterator[Any]:
        self.iterated_in = asyncio.current_task()
        try:
            async for item in self._script(inputs):
                self.yielded += 1
                yield item
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        finally:
            self.closed_in = asyncio.current_task()

    async def predict(self, inputs: dict[str, Any]) -> dspy.Prediction:
        try:
            return await self._predict(inputs)
        except asyncio.CancelledError:
            self.cancelled = True
            raise


def token(chunk: str) -> TokenEvent:
    return TokenEvent(predictor="self", field="answer", chunk=chunk)


def tokens(*chunks: str, pause: float = 0.0, then_wait: bool = False) -> Any:
    """A stream of token events for ``chunks``, then a Prediction of their text.

    ``pause``: seconds before each chunk; ``then_wait``: hang after the chunks instead.
    """

    async def script(inputs: dict[str, Any]) -> AsyncIterator[Any]:
        for chunk in chunks:
            if pause:
                await asyncio.sleep(pause)
            yield token(chunk)
        if then_wait:
            await asyncio.Event().wait()
        yield dspy.Prediction(answer="".join(chunks))

    return script


def answer(text: str, delay: float = 0.0, fail: BaseException | None = None) -> Any:
    """A JSON run answering ``text`` after ``delay`` seconds, or raising ``fail``."""

    async def predict(inputs: dict[str, Any]) -> dspy.Prediction:
        if delay:
            await asyncio.sleep(delay)
        if fail is not None:
            raise fail
        return dspy.Prediction(answer=text)

    return predict


def hang() -> Any:
    """A JSON run that never ends on its own."""

    async def predict(inputs: dict[str, Any]) -> dspy.Prediction:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return predict


async def body_of(response: Any) -> list[bytes]:
    """Every chunk of a streaming response's body, read to its end."""
    return [chunk async for chunk in response.body_iterator]


def sse_events(chunks: list[bytes]) -> list[dict[str, str]]:
    """The SSE frames of a body as dicts of their fields (a comment as ``{"comment": ...}``)."""
    events = []
    for block in b"".join(chunks).decode().split("\n\n"):
        if not block:
            continue
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            key, _, value = line.partition(":")
            fields[key or "comment"] = value.removeprefix(" ")
        events.append(fields)
    return events


async def until(condition: Callable[[], bool], within: float = 2.0) -> None:
    """Wait (on the loop) until ``condition()`` holds; fail after ``within`` seconds."""
    async with asyncio.timeout(within):
        # The state polled is the runtime's own; it has no event to wait for.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


class ScriptedReader:
    """Stands for an OpenRun (``OpenRun.event_batches``): scripted events.

    Each event is a batch of its own, a list is one batch of several, None a
    keep-alive that is due.
    """

    run_id = "r" * 32

    def __init__(self, *batches: Event | list[Event] | None) -> None:
        self._batches = batches

    async def event_batches(self) -> AsyncIterator[list[Event] | None]:
        for batch in self._batches:
            yield batch if batch is None or isinstance(batch, list) else [batch]
