"""A streamed run as Server-Sent Events: numbered frames, keep-alives, the response.

- A failure before the first event becomes a plain HTTP error: the status
  line is held until the run's first event is in hand, but not past the first
  keep-alive (note 1).
- Events are numbered from 1 (the SSE ``id``); a keep-alive is a ``: ping``
  comment, with no id, after ``keepalive`` seconds of silence.
- A run that fails after streaming began ends the stream with an ``error``
  event; one that ends on shutdown with ``error`` ``shutting_down``.
- However the response ends (the run's end, the client leaving, even before
  the first chunk), it closes the run, which cancels the run's task.

Note 1. ``fastapi.sse``'s generator routes send the status line before the
first event, so the stream routes return an ``EventSourceResponse`` built here,
encoded with FastAPI's own ``format_sse_event``.
"""

from collections.abc import AsyncIterator
from typing import Any

from fastapi.sse import KEEPALIVE_COMMENT, EventSourceResponse, format_sse_event
from starlette.responses import Response

from .events import ErrorEvent, Event
from .http import error_response
from .run import End, StreamedRun


async def respond(run: StreamedRun, keepalive: float) -> Response:
    """The run's event stream, or an error response if the run fails before its first event."""
    try:
        first = await run.first(keepalive)
    except BaseException:
        await run.close()
        raise
    if isinstance(first, End) and first.failure is not None:
        await run.close()
        return error_response(first.failure)
    return RunResponse(run, frames(first, run, keepalive))


async def frames(
    first: Event | End | None, run: StreamedRun, keepalive: float
) -> AsyncIterator[bytes]:
    """The SSE body: numbered events, keep-alives, and a last error if the run fails.

    ``None`` stands for a silence of ``keepalive`` seconds.
    """
    number = 0
    item = first
    try:
        while not isinstance(item, End):
            if item is None:
                yield KEEPALIVE_COMMENT  # a keep-alive comment carries no id
            else:
                number += 1
                yield frame(item, number)
            item = await run.next(keepalive)
        if item.failure is not None:
            error = ErrorEvent(code=item.failure.code, message=item.failure.message)
            yield frame(error, number + 1)
    finally:
        await run.close()


def frame(event: Event, number: int) -> bytes:
    """One event as an SSE frame: ``event``, its JSON ``data`` and its ``id``."""
    return format_sse_event(data_str=event.model_dump_json(), event=event.event, id=str(number))


class RunResponse(EventSourceResponse):
    """The event stream of a run, which closes the run however the response ends.

    The body generator's own ``finally`` does not run if the client leaves
    before the first chunk is sent (an async generator never started is never
    finalized), so the response closes the run too.
    """

    def __init__(self, run: StreamedRun, body: AsyncIterator[bytes]) -> None:
        super().__init__(body, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._run = run

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._run.close()
