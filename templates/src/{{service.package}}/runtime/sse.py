"""Server-Sent Events for a program run: numbered events, then done or error.

The route's generator is iterated by FastAPI's own SSE producer task, which
also sends keep-alive comments while the program is silent. When a client
goes away FastAPI cancels that task, and with it the program and its upstream
LM request: the run is never closed from another task (note 1).

Notes:
1. Closing a ``streamify`` generator from a task other than the one iterating
   it leaks an anyio cancel scope that later cancels the wrong task; stopping a
   run always means cancelling the task that iterates it.
"""

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import dspy
from fastapi.sse import ServerSentEvent
from pydantic import BaseModel

from .errors import describe
from .events import DoneEvent, ErrorEvent, PredictionEvent
from .program import ServedProgram

logger = logging.getLogger(__name__)


async def stream_events(
    program: ServedProgram,
    inputs: dict[str, Any],
    to_response: Callable[[dspy.Prediction], BaseModel],
) -> AsyncIterator[ServerSentEvent]:
    """Run ``program`` and yield its events as SSE, each with an increasing id."""
    number = 0

    def sse(payload: BaseModel) -> ServerSentEvent:
        nonlocal number
        number += 1
        return ServerSentEvent(event=payload.event, id=str(number), data=payload)  # type: ignore[attr-defined]

    try:
        async with contextlib.aclosing(program.events(inputs)) as items:
            async for item in items:
                if isinstance(item, dspy.Prediction):
                    response = to_response(item)
                    yield sse(PredictionEvent(outputs=response.model_dump(mode="json")))
                else:
                    yield sse(item)
    except Exception as exc:  # reported to the client; the stream then ends without done
        failure = describe(exc)
        logger.log(
            failure.log_level, "%s: run failed: %s", program.name, failure.code, exc_info=exc
        )
        yield sse(ErrorEvent(code=failure.code, message=failure.message))
        return
    yield sse(DoneEvent())
