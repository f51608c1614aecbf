"""run.py and runs.py through Runs.stream: a run that outlives its connection, and resumes.

Each test drives the facade the routes call with a scripted program over an
in-memory log, and reads (or does not read) the responses' bodies on the same loop.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from forge_service.runtime.errors import RunFailed
from forge_service.runtime.metrics import Metrics
from forge_service.runtime.reading import ReaderResponse
from forge_service.runtime.runlog import RunStatus
from forge_service.runtime.runs import Runs
from forge_service.runtime.security import _caller
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse

from .helpers import (
    Answer,
    Ask,
    FakeProgram,
    body_of,
    count,
    new_runs,
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


async def start(runs: Runs, program: FakeProgram, last_event_id: str | None = None) -> Any:
    return await runs.stream(program, Ask(question="q"), Answer.from_prediction, last_event_id)  # type: ignore[arg-type]


def kinds(events: list[dict[str, str]]) -> list[str]:
    return [event["event"] for event in events if "event" in event]


def chunks_of(events: list[dict[str, str]]) -> str:
    return "".join(json.loads(e["data"])["chunk"] for e in events if e.get("event") == "token")


async def leave_after(response: Any, events: int) -> list[dict[str, str]]:
    """Read ``events`` events of a response, then go away as a client does."""
    read: list[bytes] = []
    async for chunk in response.body_iterator:
        read.append(chunk)
        if len([e for e in sse_events(read) if "event" in e]) >= events:
            break
    await response.body_iterator.aclose()
    await response.reader.aclose()  # what the response's own __call__ does when it ends
    return sse_events(read)


async def test_a_run_streams_its_tokens_then_prediction_then_done_with_resumable_ids(
    metrics: Metrics,
) -> None:
    runs = new_runs(metrics)
    response = await start(runs, FakeProgram(tokens("Par", "is")))
    run_id = response.headers["X-Run-ID"]
    events = sse_events(await body_of(response))
    assert kinds(events) == ["token", "token", "prediction", "done"]
    assert [e["id"] for e in events] == [f"{run_id}-{n}" for n in (1, 2, 3, 4)]
    assert events[0]["retry"] == "1000" and all("retry" not in e for e in events[1:])
    assert {json.loads(e["data"])["run_id"] for e in events} == {run_id}
    assert json.loads(events[2]["data"])["outputs"] == {"answer": "Paris"}
    await until(lambda: not runs.running)
    assert runs.active == 0
    assert count(metrics, "qa", "stream", "ok") == 1
    record = await runs.record(run_id)
    assert (record.status, record.events, record.result) == (
        RunStatus.DONE,
        4,
        {"answer": "Paris"},
    )


async def test_the_program_is_iterated_and_closed_only_in_the_runs_own_task(
    metrics: Metrics,
) -> None:
    runs = new_runs(metrics, grace=0.0)
    program = FakeProgram(tokens("a", then_wait=True))
    response = await start(runs, program)
    (run,) = runs.running.values()
    await leave_after(response, 1)  # the reader stops early; with no grace, the run ends
    await asyncio.wait_for(run.ended.wait(), 1.0)
    assert program.cancelled
    assert program.iterated_in is run.task
    assert program.closed_in is run.task  # never aclose()d from another task


async def test_a_run_nobody_reads_goes_on_at_its_own_pace_and_frees_its_slot_at_its_end(
    metrics: Metrics,
) -> None:
    runs = new_runs(metrics)
    program = FakeProgram(tokens(*"abcdefgh"))
    response = await start(runs, program)  # the first event is in hand; nobody reads on
    await until(lambda: not runs.running)
    assert program.yielded == 9 and runs.active == 0  # not held back by its reader
    events = sse_events(await body_of(response))  # the reader comes back: everything is there
    assert chunks_of(events) == "abcdefgh" and kinds(events)[-1] == "done"


async def test_a_reader_behind_the_events_kept_gets_slow_reader_and_the_run_is_unharmed(
    metrics: Metrics,
) -> None:
    runs = new_runs(metrics, log_max_events=3)
    response = await start(runs, FakeProgram(tokens(*"abcdefgh")))
    await until(lambda: not runs.running)
    events = sse_events(await body_of(response))
    assert kinds(events)[-1] == "error" and "done" not in kinds(events)
    assert json.loads(events[-1]["data"])["code"] == "slow_reader"
    assert "id" not in events[-1]  # the reader's own end, no position in the log
    record = await runs.record(response.headers["X-Run-ID"])
    assert record.status is RunStatus.DONE


async def test_a_program_silent_past_idle_timeout_ends_with_an_error_timeout(
    metrics: Metrics,
) -> None:
    runs = new_runs(metrics, idle_timeout=0.03)
    program = FakeProgram(tokens("a", then_wait=True))
    events = sse_events(await body_of(await start(runs, program)))
    assert kinds(events) == ["token", "error"]
    assert json.loads(events[-1]["data"])["code"] == "timeout"
    assert program.cancelled
    await until(lambda: count(metrics, "qa", "stream", "timeout") == 1)


async def test_the_idle_timeout_counts_from_each_event_however_long_the_run(
    metrics: Metrics,
) -> None:
    """The run's clock is one timer set again when it fires, not moved by every event."""
    runs = new_runs(metrics, idle_timeout=0.08)
    program = FakeProgram(tokens(*"abcdefgh", pause=0.03))  # 0.24 s in all, 0.03 s apart
    events = sse_events(await body_of(await start(runs, program)))
    assert kinds(events) == ["token"] * 8 + ["prediction", "done"]


async def test_a_run_past_its_deadline_ends_with_an_error_timeout(metrics: Metrics) -> None:
    runs = new_runs(metrics, deadline=0.1, idle_timeout=1.0)
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

    runs = new_runs(metrics)
    response = await start(runs, FakeProgram(failing))
    assert isinstance(response, JSONResponse)
    assert response.status_code == 502
    body = json.loads(response.body)
    assert body["error"]["code"] == "upstream_error"
    assert "provider" not in response.body.decode()
    assert len(response.headers["X-Run-ID"]) == 32
    await until(lambda: not runs.running)
    assert runs.active == 0
    assert count(metrics, "qa", "stream", "upstream_error") == 1


async def test_a_failure_after_streaming_began_is_a_last_error_event(metrics: Metrics) -> None:
    async def breaking(inputs: dict[str, Any]) -> Any:
        yield token("a")
        raise RuntimeError("mid-run")

    runs = new_runs(metrics)
    events = sse_events(await body_of(await start(runs, FakeProgram(breaking))))
    assert kinds(events) == ["token", "error"]
    assert json.loads(events[-1]["data"])["code"] == "upstream_error"


async def test_a_stream_refused_when_full_is_503_overloaded_with_retry_after(
    metrics: Metrics,
) -> None:
    runs = new_runs(metrics, max_concurrent=0)
    program = FakeProgram()
    response = await start(runs, program)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert json.loads(response.body)["error"]["code"] == "overloaded"
    assert program.iterated_in is None  # never started
    assert count(metrics, "qa", "stream", "overloaded") == 1


async def test_a_too_long_input_is_refused_before_a_slot_is_taken(metrics: Metrics) -> None:
    from fastapi.exceptions import RequestValidationError

    runs = new_runs(metrics, max_input_chars=3)
    with pytest.raises(RequestValidationError):
        await runs.stream(FakeProgram(), Ask(question="long"), Answer.from_prediction)  # type: ignore[arg-type]
    assert runs.active == 0


async def test_with_no_grace_the_client_leaving_cancels_the_run_and_frees_its_slot(
    metrics: Metrics,
) -> None:
    runs = new_runs(metrics, grace=0.0)
    program = FakeProgram(tokens("a", then_wait=True))
    response = await start(runs, program)
    assert isinstance(response, ReaderResponse)
    (run,) = runs.running.values()
    body_sent = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            body_sent.set()

    async def receive() -> dict[str, Any]:
        await body_sent.wait()
        return {"type": "http.disconnect"}

    await asyncio.wait_for(response(UVICORN_SCOPE, receive, send), 2.0)
    await asyncio.wait_for(run.ended.wait(), 1.0)
    assert program.cancelled and program.closed_in is run.task
    assert runs.active == 0 and not runs.running
    assert count(metrics, "qa", "stream", "disconnected") == 1
    assert (await runs.record(run.run_id)).status is RunStatus.CANCELLED


async def test_a_run_outlives_its_connection_for_the_grace_period_and_resumes_without_a_gap(
    metrics: Metrics,
) -> None:
    runs = new_runs(metrics, grace=5.0)
    gate = asyncio.Event()

    async def script(inputs: dict[str, Any]) -> Any:
        for chunk in "abc":
            yield token(chunk)
        await gate.wait()  # the client leaves here
        for chunk in "def":
            yield token(chunk)
        yield __import__("dspy").Prediction(answer="abcdef")

    program = FakeProgram(script)
    response = await start(runs, program)
    run_id = response.headers["X-Run-ID"]
    before = await leave_after(response, 2)
    gate.set()
    await until(lambda: not runs.running)
    assert (await runs.record(run_id)).status is RunStatus.DONE  # it went on, unread
    resumed = await start(runs, program, last_event_id=before[-1]["id"])
    after = sse_events(await body_of(resumed))
    assert resumed.headers["X-Run-ID"] == run_id
    assert chunks_of(before) + chunks_of(after) == "abcdef"
    positions = [int(e["id"].rpartition("-")[2]) for e in before + after]
    assert positions == list(range(1, len(positions) + 1))  # no gap, no duplicate
    assert kinds(after)[-1] == "done"
    assert program.yielded == 7  # one run: the resume started no second one


async def test_nobody_back_within_the_grace_period_cancels_the_run(metrics: Metrics) -> None:
    runs = new_runs(metrics, grace=0.1)
    program = FakeProgram(tokens("a", then_wait=True))
    response = await start(runs, program)
    (run,) = runs.running.values()
    await leave_after(response, 1)
    await asyncio.sleep(0.05)
    assert not run.ended.is_set()  # within the grace period
    await asyncio.wait_for(run.ended.wait(), 1.0)
    assert program.cancelled
    assert count(metrics, "qa", "stream", "disconnected") == 1


async def test_a_client_gone_before_the_first_chunk_still_stops_reading(
    metrics: Metrics,
) -> None:
    runs = new_runs(metrics, grace=0.0)
    program = FakeProgram(tokens("a", then_wait=True))
    response = await start(runs, program)
    (run,) = runs.running.values()
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        await asyncio.sleep(0)  # a real send waits on its transport
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    # The body generator never starts, so its own finally never runs.
    await asyncio.wait_for(response(UVICORN_SCOPE, receive, send), 2.0)
    assert not any(message.get("body") for message in sent)
    await asyncio.wait_for(run.ended.wait(), 1.0)
    assert runs.active == 0 and not runs.running


async def test_a_send_failing_on_a_gone_connection_stops_reading(metrics: Metrics) -> None:
    runs = new_runs(metrics, grace=0.0)
    response = await start(runs, FakeProgram(tokens("a", then_wait=True)))
    (run,) = runs.running.values()

    async def send(message: dict[str, Any]) -> None:
        raise OSError("the connection is gone")

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    scope = {**UVICORN_SCOPE, "asgi": {"version": "3.0", "spec_version": "2.4"}}
    with pytest.raises(ClientDisconnect):
        await asyncio.wait_for(response(scope, receive, send), 2.0)
    await asyncio.wait_for(run.ended.wait(), 1.0)
    assert runs.active == 0


async def test_a_resume_after_done_replays_the_tail_and_done(metrics: Metrics) -> None:
    runs = new_runs(metrics)
    response = await start(runs, FakeProgram(tokens("a", "b", "c")))
    events = sse_events(await body_of(response))
    resumed = sse_events(await body_of(await start(runs, FakeProgram(), events[1]["id"])))
    assert [e["id"] for e in resumed] == [e["id"] for e in events[2:]]
    assert kinds(resumed) == ["token", "prediction", "done"]


async def test_a_resume_of_a_failed_run_replays_through_its_error(metrics: Metrics) -> None:
    async def breaking(inputs: dict[str, Any]) -> Any:
        yield token("a")
        yield token("b")
        raise RuntimeError("mid-run")

    runs = new_runs(metrics)
    events = sse_events(await body_of(await start(runs, FakeProgram(breaking))))
    resumed = sse_events(await body_of(await start(runs, FakeProgram(), events[0]["id"])))
    assert kinds(resumed) == ["token", "error"]
    assert json.loads(resumed[-1]["data"])["code"] == "upstream_error"


async def test_a_resume_is_refused_clearly_never_a_silent_new_run(metrics: Metrics) -> None:
    runs = new_runs(metrics, log_ttl=0.05)
    program = FakeProgram(tokens("a"))
    events = sse_events(await body_of(await start(runs, program)))
    other = await runs.stream(
        FakeProgram(name="other"), Ask(question="q"), Answer.from_prediction, events[0]["id"]
    )  # type: ignore[arg-type]
    assert (other.status_code, json.loads(other.body)["error"]["code"]) == (404, "run_not_found")
    garbled = await start(runs, program, last_event_id="7")
    assert (garbled.status_code, json.loads(garbled.body)["error"]["code"]) == (
        400,
        "bad_last_event_id",
    )
    await asyncio.sleep(0.1)  # past the TTL: the run's log is gone
    expired = await start(runs, program, last_event_id=events[0]["id"])
    assert expired.status_code == 404
    assert program.yielded == 2  # only the first run


async def test_a_resume_from_before_the_events_kept_is_410(metrics: Metrics) -> None:
    runs = new_runs(metrics, log_max_events=2)
    response = await start(runs, FakeProgram(tokens(*"abcd")))
    await until(lambda: not runs.running)
    late = await start(runs, FakeProgram(), last_event_id=f"{response.headers['X-Run-ID']}-1")
    assert (late.status_code, json.loads(late.body)["error"]["code"]) == (410, "resume_expired")


async def test_join_reads_a_run_from_any_position_with_a_second_reader(metrics: Metrics) -> None:
    runs = new_runs(metrics)
    gate = asyncio.Event()

    async def script(inputs: dict[str, Any]) -> Any:
        yield token("a")
        await gate.wait()
        yield token("b")
        yield __import__("dspy").Prediction(answer="ab")

    first = await start(runs, FakeProgram(script))
    run_id = first.headers["X-Run-ID"]
    second = await runs.join(run_id, 0)
    reading = [asyncio.ensure_future(body_of(r)) for r in (first, second)]
    gate.set()
    one, two = [sse_events(chunks) for chunks in await asyncio.gather(*reading)]
    assert [e["id"] for e in one] == [e["id"] for e in two]
    assert chunks_of(two) == "ab"


async def test_cancel_stops_the_run_at_once_and_its_stream_ends_with_cancelled(
    metrics: Metrics,
) -> None:
    runs = new_runs(metrics)
    program = FakeProgram(tokens("a", then_wait=True))
    response = await start(runs, program)
    reading = asyncio.ensure_future(body_of(response))
    record = await runs.cancel(response.headers["X-Run-ID"])
    assert record.status is RunStatus.CANCELLED
    assert record.error == {"code": "cancelled", "message": "The run was cancelled."}
    events = sse_events(await asyncio.wait_for(reading, 1.0))
    assert kinds(events) == ["token", "error"]
    assert json.loads(events[-1]["data"])["code"] == "cancelled"
    assert program.cancelled and runs.active == 0


async def test_with_api_keys_a_run_is_another_callers_to_know_nothing_of(
    metrics: Metrics,
) -> None:
    runs = new_runs(metrics, scoped=True)
    token_a = _caller.set("key-1")
    try:
        events = sse_events(await body_of(await start(runs, FakeProgram(tokens("a")))))
    finally:
        _caller.reset(token_a)
    run_id = events[0]["id"].rpartition("-")[0]
    token_b = _caller.set("key-2")
    try:
        with pytest.raises(RunFailed) as refused:
            await runs.record(run_id)
        assert refused.value.failure.code == "run_not_found"
        resumed = await start(runs, FakeProgram(), last_event_id=events[0]["id"])
        assert resumed.status_code == 404
    finally:
        _caller.reset(token_b)


async def test_drain_ends_open_streams_with_shutting_down_after_the_grace_period(
    metrics: Metrics,
) -> None:
    runs = new_runs(metrics, shutdown_grace=0.05)
    program = FakeProgram(tokens("a", then_wait=True))
    response = await start(runs, program)
    reading = asyncio.ensure_future(body_of(response))
    await asyncio.sleep(0.01)
    await asyncio.wait_for(runs.drain(), 1.0)
    events = sse_events(await asyncio.wait_for(reading, 1.0))
    assert kinds(events) == ["token", "error"]
    assert json.loads(events[-1]["data"])["code"] == "shutting_down"
    assert runs.draining and runs.active == 0
    assert program.cancelled


async def test_streams_started_while_draining_are_refused_shutting_down(
    metrics: Metrics,
) -> None:
    runs = new_runs(metrics)
    await runs.drain()
    response = await start(runs, FakeProgram())
    assert response.status_code == 503
    assert json.loads(response.body)["error"]["code"] == "shutting_down"


async def test_first_token_time_and_token_count_are_measured(metrics: Metrics) -> None:
    runs = new_runs(metrics)
    await body_of(await start(runs, FakeProgram(tokens("a", "b", "c"))))
    await until(lambda: not runs.running)
    labels = {"program": "qa"}
    assert metrics.registry.get_sample_value("dspy_tokens_streamed_total", labels) == 3
    assert metrics.registry.get_sample_value("dspy_time_to_first_token_seconds_count", labels) == 1
    assert metrics.registry.get_sample_value("dspy_stream_duration_seconds_count", labels) == 1
    assert metrics.registry.get_sample_value("dspy_active_streams") == 0
