"""sse.py and reading.py: frames with resumable ids, keep-alives, the held status line."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import dspy
import pytest
from forge_service.runtime.admission import Admission
from forge_service.runtime.events import ErrorEvent, StatusEvent
from forge_service.runtime.logs import request_id_bound, run_id_bound
from forge_service.runtime.metrics import Metrics
from forge_service.runtime.program import Listen, ServedProgram
from forge_service.runtime.reading import OpenRun, ReaderResponse, Stream
from forge_service.runtime.runlog import Entry
from forge_service.runtime.sse import frame, frames

from .helpers import (
    Answer,
    Ask,
    FakeProgram,
    body_of,
    limits,
    new_runs,
    sse_events,
    token,
    tokens,
)

PING = b": ping\n\n"
RUN = "0123456789abcdef0123456789abcdef"


def entry(position: int, event: str = "token", **data: Any) -> Entry:
    return Entry(position, event, json.dumps(data))


class Presence:
    """Counts how often a stream's presence was entered and left."""

    def __init__(self) -> None:
        self.entered = self.left = 0

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[None]:
        self.entered += 1
        try:
            yield
        finally:
            self.left += 1


def scripted(*items: Any, keepalive: float = 1.0, flush: float = 0.0) -> tuple[Stream, Presence]:
    """A stream over ``items`` (None: a tick of silence, waited for), and its presence."""

    async def entries() -> AsyncIterator[Any]:
        for item in items:
            if isinstance(item, BaseException):
                raise item
            if item is None:
                await asyncio.sleep(stream.tick)
            yield item

    presence = Presence()
    stream = Stream(RUN, entries(), presence(), Admission(limits()), keepalive, 1500, flush)
    return stream, presence


def test_frame_is_event_name_json_data_and_a_run_position_id() -> None:
    with request_id_bound("r1"), run_id_bound(RUN):
        data = token("Pa").model_dump_json()
    assert frame(Entry(3, "token", data), RUN) == (
        b"event: token\n"
        b'data: {"run_id":"0123456789abcdef0123456789abcdef","request_id":"r1",'
        b'"predictor":"self","field":"answer","chunk":"Pa"}\n'
        b"id: 0123456789abcdef0123456789abcdef-3\n\n"
    )


def test_frame_of_text_with_newlines_stays_one_data_line() -> None:
    framed = frame(Entry(1, "token", token("a\nb\r\nc").model_dump_json()), RUN)
    assert framed.count(b"\n") == 4  # event, data, id, blank
    assert json.loads(sse_events([framed])[0]["data"])["chunk"] == "a\nb\r\nc"


async def test_frames_carry_retry_once_and_keepalives_after_keepalive_seconds_of_silence() -> None:
    stream, _ = scripted(None, None, [entry(2, chunk="b")], None, [entry(3, "done")], keepalive=0.2)
    stream.tick = 0.1
    chunks = [chunk async for chunk in frames(OpenRun(stream, [entry(1, chunk="a")]))]
    events = sse_events(chunks)
    assert [(e.get("event"), e.get("id"), e.get("retry")) for e in events] == [
        ("token", f"{RUN}-1", "1500"),
        (None, None, None),  # two ticks of silence: one keep-alive
        ("token", f"{RUN}-2", None),
        ("done", f"{RUN}-3", None),
    ]
    assert chunks[1] == PING


async def test_the_events_of_one_batch_are_one_chunk_in_order() -> None:
    """A reader that fell behind writes what it catches up on at once, retry on the first."""
    stream, _ = scripted([entry(3, chunk="c"), entry(4, "prediction"), entry(5, "done")])
    first = [entry(1, chunk="a"), entry(2, chunk="b")]
    chunks = [chunk async for chunk in frames(OpenRun(stream, first))]
    assert len(chunks) == 2
    events = sse_events(chunks)
    assert [(e["id"], e.get("retry")) for e in events] == [
        (f"{RUN}-1", "1500"),
        (f"{RUN}-2", None),
        (f"{RUN}-3", None),
        (f"{RUN}-4", None),
        (f"{RUN}-5", None),
    ]
    assert chunks[1] == b"".join(
        frame(e, RUN) for e in [entry(3, chunk="c"), entry(4, "prediction"), entry(5, "done")]
    )


async def test_a_flush_interval_sends_what_was_logged_meanwhile_in_one_write(
    metrics: Metrics,
) -> None:
    """STREAM_FLUSH_INTERVAL: tokens that come faster than it go out several to a write."""
    chunks = [f"t{n} " for n in range(20)]
    writes = {}
    for flush in (0.0, 0.1):
        runs = new_runs(metrics, flush_interval=flush)
        program = FakeProgram(tokens(*chunks, pause=0.01))
        response = await runs.stream(program, Ask(question="q"), Answer.from_prediction)  # type: ignore[arg-type]
        body = await body_of(response)
        events = sse_events(body)
        run_id = response.headers["X-Run-ID"]
        # Every event once, in order, whatever the writes.
        assert [e["id"] for e in events] == [f"{run_id}-{n}" for n in range(1, 23)]
        assert [json.loads(e["data"])["chunk"] for e in events[:20]] == chunks
        assert [e["event"] for e in events[20:]] == ["prediction", "done"]
        writes[flush] = len(body)
    # 20 tokens 10 ms apart: about one write each, or one per 100 ms (the first at once).
    assert writes[0.0] > 10
    assert writes[0.1] <= 5


async def test_the_flush_wait_follows_a_token_so_the_first_token_is_not_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing before the first token waits; each batch that ends with a token does."""
    seen: list[Any] = []
    sleep = asyncio.sleep

    async def recorded(delay: float) -> None:
        seen.append(("wait", delay))
        await sleep(0)

    monkeypatch.setattr(asyncio, "sleep", recorded)
    stream, _ = scripted(
        [entry(2, chunk="a")],
        [entry(3, "status"), entry(4, chunk="b")],
        [entry(5, "status")],
        [entry(6, "prediction"), entry(7, "done")],
        flush=0.05,
    )
    reader = OpenRun(stream, [entry(1, "status")])
    async with contextlib.aclosing(reader.batches()) as batches:
        async for batch in batches:
            seen.append([e.position for e in batch])
    assert seen == [[1], [2], ("wait", 0.05), [3, 4], ("wait", 0.05), [5], [6, 7]]


async def test_a_readers_own_failure_ends_its_stream_with_an_error_without_an_id() -> None:
    from forge_service.runtime.runlog import SLOW_READER, LogError

    stream, _ = scripted(LogError(SLOW_READER))
    events = sse_events([c async for c in frames(OpenRun(stream, [entry(1, chunk="a")]))])
    assert [(e["event"], e.get("id")) for e in events] == [("token", f"{RUN}-1"), ("error", None)]
    data = json.loads(events[1]["data"])
    assert (data["code"], data["run_id"]) == ("slow_reader", RUN)


async def test_frames_close_the_entries_when_the_reader_stops_early() -> None:
    closed = []

    async def entries() -> AsyncIterator[Any]:
        try:
            yield [entry(2, chunk="b")]
            yield [entry(3, "done")]
        finally:
            closed.append(True)

    stream = Stream(RUN, entries(), Presence()(), Admission(limits()), 1.0, 1000, 0.0)
    body = frames(OpenRun(stream, [entry(1, chunk="a")]))
    await anext(body)
    await anext(body)
    await body.aclose()
    assert closed == [True]


async def test_open_holds_the_status_line_and_answers_an_early_failure_as_json(
    metrics: Metrics,
) -> None:
    async def failing(inputs: dict[str, Any]) -> AsyncIterator[Any]:
        raise dspy.utils.exceptions.LMRateLimitError("slow down", retry_after=2.0)
        yield  # an async generator

    runs = new_runs(metrics)
    response = await runs.stream(FakeProgram(failing), Ask(question="q"), Answer.from_prediction)  # type: ignore[arg-type]
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert len(response.headers["X-Run-ID"]) == 32
    assert json.loads(response.body)["error"]["code"] == "rate_limited"


async def test_read_first_waits_at_most_a_keepalive_and_close_leaves_the_run() -> None:
    ticks = 0

    async def waiting() -> AsyncIterator[Any]:
        nonlocal ticks
        while True:
            await asyncio.sleep(stream.tick)
            ticks += 1
            yield None

    presence = Presence()
    stream = Stream(RUN, waiting(), presence(), Admission(limits()), 0.2, 1000, 0.0)
    stream.tick = 0.1
    reader = OpenRun(stream)
    await reader.enter()
    from forge_service.runtime.reading import KEEPALIVE

    assert await reader.read_first() is KEEPALIVE
    assert 2 <= ticks <= 3  # a keep-alive's worth of ticks (give or take the clock), not more
    await reader.aclose()
    assert (presence.entered, presence.left) == (1, 1)


async def test_a_silent_first_event_becomes_a_keepalive_and_the_stream_opens(
    metrics: Metrics,
) -> None:
    runs = new_runs(metrics, keepalive=0.02)
    program = FakeProgram(tokens("a", pause=0.05))
    response = await runs.stream(program, Ask(question="q"), Answer.from_prediction)  # type: ignore[arg-type]
    assert isinstance(response, ReaderResponse)
    chunks = await body_of(response)
    assert chunks[0] == PING
    assert [e.get("event") for e in sse_events(chunks) if "event" in e][-2:] == [
        "prediction",
        "done",
    ]


def test_run_response_is_an_uncached_unbuffered_event_stream_naming_its_run() -> None:
    stream, _ = scripted()

    async def body() -> AsyncIterator[bytes]:
        yield b""

    response = ReaderResponse(body(), OpenRun(stream))
    assert response.media_type == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert response.headers["X-Run-ID"] == RUN


async def test_a_dspy_program_streams_tokens_that_add_up_to_its_prediction(
    metrics: Metrics,
) -> None:
    module = dspy.Predict("question -> answer")
    module.set_lm(dspy.utils.DummyLM([{"answer": "Paris, of course."}]))
    program = ServedProgram(
        "qa",
        module,
        listen=[Listen("answer", "self")],
        status={"module_start": "Working on {program}"},
    )
    runs = new_runs(metrics)
    with request_id_bound("req-9"):
        response = await runs.stream(program, Ask(question="Capital?"), Answer.from_prediction)
        events = sse_events(await body_of(response))
    kinds = [event["event"] for event in events]
    assert kinds[0] == StatusEvent.event and kinds[-2:] == ["prediction", "done"]
    data = [json.loads(event["data"]) for event in events]
    streamed = "".join(
        item["chunk"] for item, kind in zip(data, kinds, strict=True) if kind == "token"
    )
    assert streamed == data[-2]["outputs"]["answer"] == "Paris, of course."
    assert {item["request_id"] for item in data} == {"req-9"}
    run_id = response.headers["X-Run-ID"]
    assert [event["id"] for event in events] == [f"{run_id}-{n}" for n in range(1, len(events) + 1)]
    assert ErrorEvent.event not in kinds
