"""run.py through Runs.stream: a streamed run's task, its bounded queue, its slow reader.

Each test drives the facade the routes call with a scripted program and reads
(or does not read) the response's body on the same loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from forge_service.runtime.metrics import Metrics
from forge_service.runtime.runs import Runs
from forge_service.runtime.sse import RunResponse
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse

from .helpers import (
    Answer,
    Ask,
    FakeProgram,
    body_of,
    count,
    limits,
    sse_events,
    token,
    tokens,
    until,
)

# What uvicorn passes a response (ASGI 2.3: Starlette listens for http.disconnect).
UVICORN_SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "method": "POST",
    "path": "/v1/qa/stream",
}


async def start(runs: Runs, program: FakeProgram) -> Any:
    return await runs.stream(program, Ask(question="q"), Answer.from_prediction)  # type: ignore[arg-type]


async def test_a_run_streams_its_tokens_then_prediction_then_done(metrics: Metrics) -> None:
    runs = Runs(limits(), metrics)
    response = await start(runs, FakeProgram(tokens("Par", "is")))
    events = sse_events(await body_of(response))
    assert [event["event"] for event in events] == ["token", "token", "prediction", "done"]
    assert json.loads(events[2]["data"])["outputs"] == {"answer": "Paris"}
    assert runs.active == 0 and not runs.open
    assert count(metrics, "qa", "stream", "ok") == 1


async def test_the_program_is_iterated_and_closed_only_in_the_runs_own_task(
    metrics: Metrics,
) -> None:
    runs = Runs(limits(), metrics)
    program = FakeProgram(tokens("a", then_wait=True))
    response = await start(runs, program)
    (run,) = runs.open
    await anext(response.body_iterator)
    await response.body_iterator.aclose()  # the reader stops early
    assert run.task is not None and run.task.done()
    assert program.cancelled
    assert program.iterated_in is run.task
    assert program.closed_in is run.task  # never aclose()d from another task


async def test_a_slow_reader_holds_at_most_stream_buffer_events_and_the_run_waits(
    metrics: Metrics,
) -> None:
    runs = Runs(limits(stream_buffer=2, reader_timeout=5.0), metrics)
    program = FakeProgram(tokens(*"abcdefgh"))
    response = await start(runs, program)  # the first event is in hand
    (run,) = runs.open
    await until(lambda: run.queue.full())
    await asyncio.sleep(0.05)
    # One taken by the response, two queued, one waiting for room; no more asked of DSPy.
    assert program.yielded == 4
    assert run.queue.qsize() == 2
    assert runs.active == 1
    await response.body_iterator.aclose()


async def test_a_reader_a_full_buffer_behind_for_reader_timeout_loses_the_run_and_its_slot(
    metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    runs = Runs(limits(stream_buffer=2, reader_timeout=0.05), metrics)
    program = FakeProgram(tokens(*"abcdefgh"))
    response = await start(runs, program)
    (run,) = runs.open
    await until(lambda: run.task is not None and run.task.done())
    assert runs.active == 0  # freed while the response is still open
    assert program.closed_in is run.task
    events = sse_events(await body_of(response))
    # If it ever reads again: the buffered events, then the error, numbered after them.
    assert [event["event"] for event in events] == ["token", "token", "token", "error"]
    assert [event["id"] for event in events] == ["1", "2", "3", "4"]
    assert json.loads(events[-1]["data"])["code"] == "slow_reader"
    assert count(metrics, "qa", "stream", "slow_reader") == 1
    (record,) = [r for r in caplog.records if "stopped reading" in r.getMessage()]
    assert record.name == "forge_service.runtime.runs"
    assert record.levelno == logging.WARNING


async def test_a_slow_reader_that_keeps_up_within_reader_timeout_gets_every_event(
    metrics: Metrics,
) -> None:
    runs = Runs(limits(stream_buffer=1, reader_timeout=1.0), metrics)
    response = await start(runs, FakeProgram(tokens(*"abcdef")))
    chunks = []
    async for chunk in response.body_iterator:
        chunks.append(chunk)
        await asyncio.sleep(0.01)
    events = sse_events(chunks)
    assert "".join(json.loads(e["data"])["chunk"] for e in events if e["event"] == "token") == (
        "abcdef"
    )
    assert events[-1]["event"] == "done"


async def test_waiting_for_a_slow_reader_does_not_count_as_the_programs_idle_time(
    metrics: Metrics,
) -> None:
    runs = Runs(limits(stream_buffer=1, idle_timeout=0.03, reader_timeout=2.0), metrics)
    response = await start(runs, FakeProgram(tokens(*"abcd")))
    chunks = []
    async for chunk in response.body_iterator:
        chunks.append(chunk)
        await asyncio.sleep(0.06)  # twice the idle timeout between two reads
    assert sse_events(chunks)[-1]["event"] == "done"


async def test_a_program_silent_past_idle_timeout_ends_with_an_error_timeout(
    metrics: Metrics,
) -> None:
    runs = Runs(limits(idle_timeout=0.03), metrics)
    program = FakeProgram(tokens("a", then_wait=True))
    events = sse_events(await body_of(await start(runs, program)))
    assert [event["event"] for event in events] == ["token", "error"]
    assert json.loads(events[-1]["data"])["code"] == "timeout"
    assert program.cancelled
    assert count(metrics, "qa", "stream", "timeout") == 1


async def test_a_run_past_its_deadline_ends_with_an_error_timeout(metrics: Metrics) -> None:
    runs = Runs(limits(deadline=0.1, idle_timeout=1.0), metrics)
    events = sse_events(
        await body_of(await start(runs, FakeProgram(tokens(*"abcdefgh", pause=0.03))))
    )
    assert events[-1]["event"] == "error"
    assert json.loads(events[-1]["data"])["code"] == "timeout"
    assert len(events) < 9


async def test_a_failure_before_the_first_event_is_a_plain_http_error(metrics: Metrics) -> None:
    async def failing(inputs: dict[str, Any]) -> Any:
        raise RuntimeError("the provider's own words")
        yield

    runs = Runs(limits(), metrics)
    response = await start(runs, FakeProgram(failing))
    assert isinstance(response, JSONResponse)
    assert response.status_code == 502
    body = json.loads(response.body)
    assert body["error"]["code"] == "upstream_error"
    assert "provider" not in response.body.decode()
    assert runs.active == 0 and not runs.open
    assert count(metrics, "qa", "stream", "upstream_error") == 1


async def test_a_failure_after_streaming_began_is_a_last_error_event(metrics: Metrics) -> None:
    async def breaking(inputs: dict[str, Any]) -> Any:
        yield token("a")
        raise RuntimeError("mid-run")

    runs = Runs(limits(), metrics)
    events = sse_events(await body_of(await start(runs, FakeProgram(breaking))))
    assert [event["event"] for event in events] == ["token", "error"]
    assert json.loads(events[-1]["data"])["code"] == "upstream_error"


async def test_a_stream_refused_when_full_is_503_overloaded_with_retry_after(
    metrics: Metrics,
) -> None:
    runs = Runs(limits(max_concurrent=0), metrics)
    program = FakeProgram()
    response = await start(runs, program)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert json.loads(response.body)["error"]["code"] == "overloaded"
    assert program.iterated_in is None  # never started
    assert count(metrics, "qa", "stream", "overloaded") == 1


async def test_a_too_long_input_is_refused_before_a_slot_is_taken(metrics: Metrics) -> None:
    from fastapi.exceptions import RequestValidationError

    runs = Runs(limits(max_input_chars=3), metrics)
    with pytest.raises(RequestValidationError):
        await runs.stream(FakeProgram(), Ask(question="long"), Answer.from_prediction)  # type: ignore[arg-type]
    assert runs.active == 0


async def test_the_client_leaving_mid_stream_cancels_the_run_and_frees_its_slot(
    metrics: Metrics,
) -> None:
    runs = Runs(limits(), metrics)
    program = FakeProgram(tokens("a", then_wait=True))
    response = await start(runs, program)
    assert isinstance(response, RunResponse)
    (run,) = runs.open
    sent: list[dict[str, Any]] = []
    body_sent = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            body_sent.set()

    async def receive() -> dict[str, Any]:
        await body_sent.wait()
        return {"type": "http.disconnect"}

    await asyncio.wait_for(response(UVICORN_SCOPE, receive, send), 2.0)
    assert run.task is not None and run.task.done()
    assert program.cancelled and program.closed_in is run.task
    assert runs.active == 0 and not runs.open
    assert count(metrics, "qa", "stream", "disconnected") == 1


async def test_a_client_gone_before_the_first_chunk_still_closes_the_run(
    metrics: Metrics,
) -> None:
    runs = Runs(limits(), metrics)
    program = FakeProgram(tokens("a", then_wait=True))
    response = await start(runs, program)
    (run,) = runs.open
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        await asyncio.sleep(0)  # a real send waits on its transport
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    # The body generator never starts, so its own finally never runs.
    await asyncio.wait_for(response(UVICORN_SCOPE, receive, send), 2.0)
    assert not any(message.get("body") for message in sent)
    assert run.closed and run.task is not None and run.task.done()
    assert runs.active == 0 and not runs.open


async def test_a_send_failing_on_a_gone_connection_closes_the_run(metrics: Metrics) -> None:
    runs = Runs(limits(), metrics)
    response = await start(runs, FakeProgram(tokens("a", then_wait=True)))
    (run,) = runs.open

    async def send(message: dict[str, Any]) -> None:
        raise OSError("the connection is gone")

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    scope = {**UVICORN_SCOPE, "asgi": {"version": "3.0", "spec_version": "2.4"}}
    with pytest.raises(ClientDisconnect):
        await asyncio.wait_for(response(scope, receive, send), 2.0)
    assert run.closed and run.task is not None and run.task.done()
    assert runs.active == 0


async def test_closing_a_run_twice_counts_it_once(metrics: Metrics) -> None:
    runs = Runs(limits(), metrics)
    await start(runs, FakeProgram(tokens("a", then_wait=True)))
    (run,) = runs.open
    await run.close()
    await run.close()
    assert count(metrics, "qa", "stream", "disconnected") == 1
    assert metrics.registry.get_sample_value("dspy_active_streams") == 0


async def test_drain_ends_open_streams_with_shutting_down_after_the_grace_period(
    metrics: Metrics,
) -> None:
    runs = Runs(limits(shutdown_grace=0.05), metrics)
    program = FakeProgram(tokens("a", then_wait=True))
    response = await start(runs, program)
    reading = asyncio.ensure_future(body_of(response))
    await asyncio.sleep(0.01)
    await asyncio.wait_for(runs.drain(), 1.0)
    events = sse_events(await asyncio.wait_for(reading, 1.0))
    assert [event["event"] for event in events] == ["token", "error"]
    assert json.loads(events[-1]["data"])["code"] == "shutting_down"
    assert runs.draining and runs.active == 0
    assert program.cancelled


async def test_after_the_grace_period_a_reader_behind_a_full_buffer_gets_shutting_down_next(
    metrics: Metrics,
) -> None:
    runs = Runs(limits(stream_buffer=2, shutdown_grace=0.02), metrics)
    program = FakeProgram(tokens(*"abcdefgh"))
    response = await start(runs, program)
    (run,) = runs.open
    await until(lambda: run.queue.full())
    await runs.drain()  # no room in the queue to say so: the reader is told first
    events = sse_events(await body_of(response))
    assert [event["event"] for event in events] == ["token", "error"]
    assert json.loads(events[-1]["data"])["code"] == "shutting_down"
    assert run.task is not None and run.task.cancelled()
    assert program.closed_in is run.task
    assert runs.active == 0


async def test_streams_started_while_draining_are_refused_shutting_down(
    metrics: Metrics,
) -> None:
    runs = Runs(limits(), metrics)
    await runs.drain()
    response = await start(runs, FakeProgram())
    assert response.status_code == 503
    assert json.loads(response.body)["error"]["code"] == "shutting_down"


async def test_first_token_time_and_token_count_are_measured(metrics: Metrics) -> None:
    runs = Runs(limits(), metrics)
    await body_of(await start(runs, FakeProgram(tokens("a", "b", "c"))))
    labels = {"program": "qa"}
    assert metrics.registry.get_sample_value("dspy_tokens_streamed_total", labels) == 3
    assert metrics.registry.get_sample_value("dspy_time_to_first_token_seconds_count", labels) == 1
    assert metrics.registry.get_sample_value("dspy_stream_duration_seconds_count", labels) == 1
