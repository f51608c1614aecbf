"""The native protocol: a run's events as Server-Sent Events, ids that resume, keep-alives.

- The stream's first event carries ``retry:`` (how long a client waits to
  reconnect), once; not a frame of its own, which some clients (httpx-sse)
  would hand on as an empty event.
- Every event's ``id`` is ``<run>-<n>``, its position in the run's log, so a
  standard client's automatic reconnect (``Last-Event-ID``) resumes the run
  right after the last event it got: no gap, no duplicate, no second run.
- A keep-alive is a ``: ping`` comment, with no id, after ``keepalive``
  seconds of silence.
- The stream ends after the run's terminal event (``done`` or ``error``); a
  reader that cannot go on (it fell behind what the log keeps, the store is
  down, the server shuts down) gets an ``error`` of its own, not logged.

The reading itself (the held status line, presence, keep-alive pacing) is
``reading.py``'s, shared with every other protocol (``protocols/``).

Note 1. ``fastapi.sse``'s generator routes send the status line before the
first event, so the stream routes return a ``ReaderResponse`` built here,
encoded with FastAPI's own ``format_sse_event``.
"""

import contextlib
from collections.abc import AsyncIterator

from fastapi.sse import KEEPALIVE_COMMENT, format_sse_event

from .errors import Failure
from .reading import OpenRun, ReaderResponse
from .run import error_data
from .runlog import Entry


def respond(reader: OpenRun) -> ReaderResponse:
    """The native event stream of ``reader``'s run (note 1)."""
    return ReaderResponse(frames(reader), reader)


async def frames(reader: OpenRun) -> AsyncIterator[bytes]:
    """The SSE body: numbered events and keep-alives; it ends after the run's end.

    The events logged since the last look are sent as one chunk: one write for
    a reader that fell behind, however many events it catches up on.
    """
    retry: int | None = reader.stream.reconnect_ms  # sent with the first event
    async with contextlib.aclosing(reader.batches()) as batches:
        async for item in batches:
            if isinstance(item, list):
                run_id = reader.run_id
                first = frame(item[0], run_id, retry)
                retry = None
                if len(item) == 1:
                    yield first
                else:
                    yield b"".join([first, *(frame(entry, run_id) for entry in item[1:])])
            elif isinstance(item, Failure):
                # The reader's own end: no id, for it is no position in the run's log.
                data = error_data(item, reader.run_id)
                yield format_sse_event(data_str=data, event="error", retry=retry)
            else:
                yield KEEPALIVE_COMMENT  # a keep-alive comment carries no id


def frame(entry: Entry, run_id: str, retry: int | None = None) -> bytes:
    """One logged event as an SSE frame: ``event``, its JSON ``data``, and ``<run>-<n>``."""
    event_id = f"{run_id}-{entry.position}"
    return format_sse_event(data_str=entry.data, event=entry.event, id=event_id, retry=retry)
