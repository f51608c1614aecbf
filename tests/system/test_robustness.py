"""Streams that never hang, leak or lie: the generated service under failure.

Each test serves a small generated project under uvicorn against the fake LM
server, switched by its api_base into a failure scenario, and asserts the
exact HTTP status or event sequence a client sees.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from dspy_forge.dev.devserver import RunningService
from dspy_forge.dev.fakelm.testing import FakeLM
from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec_text

from .serving import debug_stats, served, wait_until

SPEC = """
version: 1
service: {name: sturdy, title: Sturdy}
lm: {model: openai/gpt-4o-mini, api_key_env: OPENAI_API_KEY}
tools:
  search:
    description: Search for information.
    args: {query: {type: str, description: What to look for.}}
programs:
  quiet:
    module: Predict
    signature: "question -> answer"
    stream: [{field: answer}]
  chatty:
    module: ChainOfThought
    signature: "question -> answer"
    stream: [{field: answer}]
    status: {lm_start: Thinking...}
  agent:
    module: ReAct
    signature: "question -> answer"
    tools: [search]
    stream: [{field: answer}]
    status: {tool_start: "Using {tool}", tool_end: "{tool}: {output}"}
"""
QUESTION = {"question": "What is the meaning of life?"}
# RUN_GRACE=0: a run ends as soon as its client leaves, as these tests expect
# (tests/system/test_resume.py covers the grace period).
BASE_ENV = {"LM_NUM_RETRIES": "0", "DEBUG_STATS": "true", "RUN_GRACE": "0"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    loaded = load_spec_text(SPEC)
    return generate(loaded, tmp_path_factory.mktemp("sturdy") / "project")


@pytest.fixture
def serve(project: Path, fake_lm: FakeLM, tmp_path: Path) -> Callable[..., Any]:
    """Serve the project on the fake LM in ``scenario``, with settings from ``env``."""

    @contextmanager
    def start(scenario: str | None = None, **env: str) -> Iterator[tuple[RunningService, Path]]:
        log = tmp_path / "service.log"
        settings = {**BASE_ENV, **env}
        with served(project, "sturdy", fake_lm, log, scenario=scenario, env=settings) as service:
            yield service, log

    return start


async def collect(url: str, path: str, inputs: dict[str, Any]) -> tuple[int, list[Any]]:
    async with (
        httpx.AsyncClient(base_url=url, timeout=30) as client,
        aconnect_sse(client, "POST", path, json=inputs) as source,
    ):
        if source.response.status_code != 200:
            await source.response.aread()
            return source.response.status_code, [source.response.json()]
        request_id = source.response.headers["x-request-id"]
        events = [(sse.event, json.loads(sse.data)) async for sse in source.aiter_sse() if sse.data]
    # Every event names the request and the run it belongs to; the assertions compare the rest.
    run_id = source.response.headers["x-run-id"]
    assert all(data.pop("request_id") == request_id for _, data in events)
    assert all(data.pop("run_id") == run_id for _, data in events)
    return 200, events


def test_client_going_away_cancels_the_run_and_its_upstream_request(
    serve: Callable[..., Any], fake_lm: FakeLM
) -> None:
    with serve("delay-100ms+words-200") as (service, log):
        idle_tasks = debug_stats(service)["tasks"]
        before = fake_lm.stats()["streams_disconnected"]

        async def leave_after_first_token() -> None:
            async with (
                httpx.AsyncClient(base_url=service.url, timeout=30) as client,
                aconnect_sse(client, "POST", "/v1/quiet/stream", json=QUESTION) as source,
            ):
                async for sse in source.aiter_sse():
                    if sse.event == "token":
                        return

        asyncio.run(leave_after_first_token())
        assert wait_until(lambda: fake_lm.stats()["streams_disconnected"] == before + 1)
        assert wait_until(lambda: fake_lm.stats()["streams_open"] == 0)
        assert wait_until(lambda: debug_stats(service)["active_runs"] == 0)
        assert wait_until(lambda: debug_stats(service)["tasks"] <= idle_tasks)
    text = log.read_text()
    assert "Application startup complete" in text  # the log is really captured
    assert "Traceback" not in text
    assert "ERROR" not in text


@pytest.mark.parametrize(
    ("scenario", "status", "code"),
    [
        ("http-401", 502, "upstream_auth"),
        ("http-403", 502, "upstream_auth"),
        ("http-429", 429, "rate_limited"),
        ("context-window", 422, "context_window_exceeded"),
        ("http-500", 502, "upstream_error"),
    ],
)
def test_failure_before_the_first_event_is_an_http_error(
    serve: Callable[..., Any], scenario: str, status: int, code: str
) -> None:
    with serve(scenario) as (service, _):
        for path in ("/v1/quiet", "/v1/quiet/stream"):
            response = httpx.post(f"{service.url}{path}", json=QUESTION, timeout=30)
            assert response.status_code == status, (path, response.text)
            error = response.json()["error"]
            assert error["code"] == code
            assert "Traceback" not in error["message"]
            if status == 429:
                assert response.headers["retry-after"] == "1"


def test_a_silent_lm_times_out_with_504(serve: Callable[..., Any]) -> None:
    # The JSON endpoint hits the LM client's timeout; the stream, its idle timeout first.
    with serve("first-5000ms", IDLE_TIMEOUT="0.5", LM_TIMEOUT="1") as (service, _):
        for path in ("/v1/quiet", "/v1/quiet/stream"):
            started = time.monotonic()
            response = httpx.post(f"{service.url}{path}", json=QUESTION, timeout=30)
            assert response.status_code == 504, response.text
            assert response.json()["error"]["code"] == "timeout"
            assert time.monotonic() - started < 3


def test_failure_mid_stream_is_an_error_event_and_no_done(serve: Callable[..., Any]) -> None:
    with serve("break-after-8") as (service, _):
        status, events = asyncio.run(collect(service.url, "/v1/chatty/stream", QUESTION))
    assert status == 200
    kinds = [event for event, _ in events]
    assert kinds[0] == "status"
    assert kinds[-1] == "error"
    assert "done" not in kinds and "prediction" not in kinds
    assert events[-1][1] == {
        "code": "upstream_unavailable",
        "message": "The language model could not be reached.",
    }


def test_a_stall_gets_keepalives_then_a_timeout_event(serve: Callable[..., Any]) -> None:
    with (
        serve("stall-after-12", IDLE_TIMEOUT="1.5", KEEPALIVE_INTERVAL="0.3") as (service, _),
        httpx.stream(
            "POST", f"{service.url}/v1/quiet/stream", json=QUESTION, timeout=30
        ) as response,
    ):
        lines = list(response.iter_lines())
    assert response.status_code == 200
    assert ": ping" in lines
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert "token" in events
    assert events[-1] == "error"
    assert (
        json.loads(lines[lines.index("event: error") + 1].removeprefix("data: "))["code"]
        == "timeout"
    )


def test_the_run_deadline_ends_a_slow_run(serve: Callable[..., Any]) -> None:
    with serve("delay-50ms+words-400", RUN_DEADLINE="1") as (service, _):
        started = time.monotonic()
        status, events = asyncio.run(collect(service.url, "/v1/chatty/stream", QUESTION))
        assert time.monotonic() - started < 5
    assert status == 200
    assert events[-1] == (
        "error",
        {"code": "timeout", "message": "The program did not finish in time."},
    )


def test_overload_is_refused_at_once_with_retry_after(serve: Callable[..., Any]) -> None:
    with serve("delay-100ms+words-100", MAX_CONCURRENT_RUNS="2") as (service, _):

        async def crowd() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:

                async def hold() -> None:
                    async with client.stream("POST", "/v1/quiet/stream", json=QUESTION) as r:
                        await asyncio.sleep(1.0)
                        assert r.status_code == 200

                holders = [asyncio.create_task(hold()) for _ in range(2)]
                await asyncio.sleep(0.5)
                refused = [
                    await client.post("/v1/quiet/stream", json=QUESTION),
                    await client.post("/v1/quiet", json=QUESTION),
                ]
                for task in holders:
                    task.cancel()
                await asyncio.gather(*holders, return_exceptions=True)
                return refused

        for response in asyncio.run(crowd()):
            assert response.status_code == 503
            assert response.headers["retry-after"] == "1"
            assert response.json()["error"]["code"] == "overloaded"
        assert wait_until(lambda: debug_stats(service)["active_runs"] == 0)


def test_a_tool_that_raises_is_an_observation_not_a_failure(serve: Callable[..., Any]) -> None:
    # The generated stub raises NotImplementedError: the agent sees it and goes on.
    with serve() as (service, log):
        status, events = asyncio.run(collect(service.url, "/v1/agent/stream", QUESTION))
    assert status == 200
    kinds = [event for event, _ in events]
    assert kinds[-2:] == ["prediction", "done"]
    # A failed tool never reports tool_end (tests/system/test_status_and_tools.py: tool_error).
    hooks = [data["hook"] for event, data in events if event == "status"]
    assert hooks == ["tool_start"]
    assert "agent: tool search failed" in log.read_text()


def test_sigterm_ends_open_streams_within_the_grace_period(serve: Callable[..., Any]) -> None:
    with serve("delay-200ms+words-300", SHUTDOWN_GRACE="1") as (service, _):

        async def stream_then_terminate() -> list[Any]:
            async with (
                httpx.AsyncClient(base_url=service.url, timeout=30) as client,
                aconnect_sse(client, "POST", "/v1/quiet/stream", json=QUESTION) as source,
            ):
                events = []
                async for sse in source.aiter_sse():
                    events.append((sse.event, json.loads(sse.data)))
                    if len(events) == 2:
                        service.process.send_signal(signal.SIGTERM)
                return events

        started = time.monotonic()
        events = asyncio.run(stream_then_terminate())
        kind, data = events[-1]
        assert kind == "error"
        assert data == {
            "run_id": events[0][1]["run_id"],
            "request_id": events[0][1]["request_id"],
            "code": "shutting_down",
            "message": "The server is shutting down; retry elsewhere.",
        }
        service.process.wait(timeout=10)
        assert time.monotonic() - started < 6
        # uvicorn re-raises the signal it handled once it has shut down cleanly.
        assert service.process.returncode in {0, -signal.SIGTERM}
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{service.url}/healthz", timeout=2)
