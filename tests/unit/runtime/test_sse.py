"""sse.py: frames, keep-alives, the held status line, and the response that closes its run."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import dspy
from forge_service.runtime.errors import Failure
from forge_service.runtime.events import DoneEvent, ErrorEvent, StatusEvent
from forge_service.runtime.logs import request_id_bound
from forge_service.runtime.metrics import Metrics
from forge_service.runtime.program import Listen, ServedProgram
from forge_service.runtime.run import End
from forge_service.runtime.runs import Runs
from forge_service.runtime.sse import RunResponse, frame, frames, respond

from .helpers import Answer, Ask, FakeProgram, body_of, limits, sse_events, token, tokens

PING = b": ping\n\n"


class ScriptedRun:
    """Stands for a StreamedRun: its items in order (None for a silence), and its close."""

    def __init__(self, *items: Any) -> None:
        self.items = list(items)
        self.closed = 0

    async def first(self, patience: float) -> Any:
        return self.items.pop(0)

    async def next(self, patience: float) -> Any:
        return self.items.pop(0)

    async def close(self) -> None:
        self.closed += 1


def test_frame_is_event_name_json_data_and_number() -> None:
    with request_id_bound("r1"):
        event = token("Pa")
    assert frame(event, 3) == (
        b"event: token\n"
        b'data: {"request_id":"r1","predictor":"self","field":"answer","chunk":"Pa"}\n'
        b"id: 3\n\n"
    )


def test_frame_of_text_with_newlines_stays_one_data_line() -> None:
    framed = frame(token("a\nb\r\nc"), 1)
    assert framed.count(b"\n") == 4  # event, data, id, blank
    assert json.loads(sse_events([framed])[0]["data"])["chunk"] == "a\nb\r\nc"


async def test_frames_number_events_from_one_and_send_keepalives_without_an_id() -> None:
    run = ScriptedRun(None, token("b"), None, DoneEvent(), End())
    chunks = [chunk async for chunk in frames(token("a"), run, 1.0)]  # type: ignore[arg-type]
    assert chunks[1] == chunks[3] == PING
    events = sse_events(chunks)
    assert [(e.get("event"), e.get("id")) for e in events] == [
        ("token", "1"),
        (None, None),
        ("token", "2"),
        (None, None),
        ("done", "3"),
    ]
    assert run.closed == 1


async def test_frames_end_a_failed_run_with_an_error_event_numbered_next() -> None:
    failure = Failure(504, "timeout", "Too slow.")
    run = ScriptedRun(End(failure))
    events = sse_events([c async for c in frames(token("a"), run, 1.0)])  # type: ignore[arg-type]
    assert [(e["event"], e["id"]) for e in events] == [("token", "1"), ("error", "2")]
    data = json.loads(events[1]["data"])
    assert (data["code"], data["message"]) == ("timeout", "Too slow.")


async def test_frames_close_the_run_when_the_reader_stops_early() -> None:
    run = ScriptedRun(token("b"), End())
    body = frames(token("a"), run, 1.0)  # type: ignore[arg-type]
    await anext(body)
    await body.aclose()
    assert run.closed == 1


async def test_respond_holds_the_status_line_and_answers_an_early_failure_as_json() -> None:
    run = ScriptedRun(End(Failure(429, "rate_limited", "Later.", 2.0)))
    response = await respond(run, 1.0)  # type: ignore[arg-type]
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert json.loads(response.body)["error"]["code"] == "rate_limited"
    assert run.closed == 1


async def test_respond_closes_the_run_if_the_handler_is_cancelled_while_waiting() -> None:
    class Waiting(ScriptedRun):
        async def first(self, patience: float) -> Any:
            await asyncio.Event().wait()

    run = Waiting()
    task = asyncio.ensure_future(respond(run, 1.0))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert run.closed == 1


async def test_a_silent_first_event_becomes_a_keepalive_and_the_stream_opens(
    metrics: Metrics,
) -> None:
    runs = Runs(limits(keepalive=0.02), metrics)
    program = FakeProgram(tokens("a", pause=0.05))
    response = await runs.stream(program, Ask(question="q"), Answer.from_prediction)  # type: ignore[arg-type]
    assert isinstance(response, RunResponse)
    chunks = await body_of(response)
    assert chunks[0] == PING
    assert [e.get("event") for e in sse_events(chunks) if "event" in e][-2:] == [
        "prediction",
        "done",
    ]


def test_run_response_is_an_uncached_unbuffered_event_stream() -> None:
    async def empty() -> Any:
        yield b""

    response = RunResponse(ScriptedRun(), empty())  # type: ignore[arg-type]
    assert response.media_type == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"


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
    runs = Runs(limits(), metrics)
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
    assert [event["id"] for event in events] == [str(n) for n in range(1, len(events) + 1)]
    assert ErrorEvent.event not in kinds
