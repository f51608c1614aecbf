"""A stand-in for a resumable SSE service, to test the test infrastructure with.

:mod:`tests.system.servers` and :mod:`tests.system.sse_clients` must be shown
to work before the resumable-run tests rely on them, and the generated service
is being written at the same time, so their own tests run against this small
Starlette app instead. It speaks the resumable runs' wire protocol (issue
15) in miniature: ``POST /stream`` answers a ``retry:`` frame, then
events ``id: r-1``, ``r-2`` ... ``r-N``, the last one ``event: done``; a
request with ``Last-Event-ID: r-k`` continues after event k; an id it does not
know is a 404 JSON error. Keep-alive comments come between events, and frames
are sent whole, two to a chunk and split across chunks, so that a proxy or a
client that only copes with one frame per chunk fails here.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class StandIn:
    """The app's knobs and what it saw, for the test to set and read."""

    name: str = "standin"
    events: int = 8
    retry_ms: int = 50
    delay: float = 0.005
    ready: bool = True
    requests: list[dict[str, str | None]] = field(default_factory=list)


def frame(number: int, last: int) -> bytes:
    """Event ``number`` of ``last``: ``token`` events, then ``done``."""
    event = "done" if number == last else "token"
    data = json.dumps({"n": number, "run_id": "r"})
    return f"id: r-{number}\nevent: {event}\ndata: {data}\n\n".encode()


def chunks(start: int, last: int, retry_ms: int) -> list[bytes]:
    """The body's chunks for events after ``start``: whole, paired, split, with pings."""
    out = [f"retry: {retry_ms}\n\n".encode()]
    number = start + 1
    for step in itertools.count():
        if number > last:
            break
        mode = step % 3
        if mode == 0 and number < last:  # two events in one chunk
            out.append(frame(number, last) + b": ping\n\n" + frame(number + 1, last))
            number += 2
        elif mode == 1:  # one event split across two chunks, inside a line
            whole = frame(number, last)
            out += [whole[:9], whole[9:]]
            number += 1
        else:
            out += [frame(number, last), b": ping\n\n"]
            number += 1
    return out


def app(state: StandIn) -> Starlette:
    """The stand-in service over ``state``."""

    async def stream(request: Request) -> Response:
        last_id = request.headers.get("last-event-id")
        body = await request.body()
        state.requests.append({"last_event_id": last_id, "body": body.decode()})
        start = 0
        if last_id is not None:
            prefix, _, number = last_id.partition("-")
            if prefix != "r" or not number.isdigit() or int(number) > state.events:
                return JSONResponse(
                    {"error": {"code": "run_not_found", "message": f"no run {last_id}"}},
                    status_code=404,
                )
            start = int(number)

        async def body_chunks() -> AsyncIterator[bytes]:
            for chunk in chunks(start, state.events, state.retry_ms):
                yield chunk
                await asyncio.sleep(state.delay)

        return StreamingResponse(
            body_chunks(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Served-By": state.name},
        )

    async def readyz(request: Request) -> Response:
        return PlainTextResponse("ok" if state.ready else "not ready", 200 if state.ready else 503)

    async def who(request: Request) -> Response:
        return PlainTextResponse(state.name)

    return Starlette(
        routes=[
            Route("/stream", stream, methods=["POST"]),
            Route("/readyz", readyz),
            Route("/who", who),
        ]
    )
