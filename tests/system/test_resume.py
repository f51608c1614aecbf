"""Runs that survive reconnects and replicas, with real clients, Redis and a load balancer.

Single process: a proxy cuts each stream once; real SSE clients (two Node
libraries and a Python one) reconnect by themselves with ``Last-Event-ID``,
and the text they print is exactly the final field, from one LM request.

Three replicas behind HAProxy with Redis: streams cut at random points resume
through the balancer, usually on another replica; a cancel through another
replica closes the LM's stream; a replica killed mid-run leaves its readers a
``run_lost``, never a hang; Redis killed and restarted gives typed errors and
a service that recovers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from dspy_forge.dev.devserver import RunningService
from dspy_forge.dev.fakelm.testing import FakeLM
from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec_text

from .servers import CuttingProxy, HAProxy, RedisServer
from .serving import debug_stats, served, wait_until
from .sse_clients import NODE_SCRIPTS, httpx_sse_events, node_events

SPEC = """
version: 1
service: {name: resumable, title: Resumable}
lm: {model: openai/gpt-4o-mini, api_key_env: OPENAI_API_KEY}
programs:
  qa:
    module: Predict
    signature: "question -> answer"
    stream: [{field: answer}]
"""
PACKAGE = "resumable"
BASE_ENV = {"LM_NUM_RETRIES": "0", "DEBUG_STATS": "true", "LOG_LEVEL": "WARNING"}

services = itertools.count()  # numbers each served service's log file


def question() -> dict[str, str]:
    """A question never asked before, in any process or earlier run, so that neither DSPy's
    cache nor another test's request to the shared fake LM is counted as its own."""
    return {"question": f"Question {uuid.uuid4().hex}: why?"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(load_spec_text(SPEC), tmp_path_factory.mktemp("resumable") / "project")


@pytest.fixture
def serve(project: Path, fake_lm: FakeLM, tmp_path: Path) -> Callable[..., Any]:
    """Serve the project on the fake LM in ``scenario``, with settings from ``env``."""

    @contextmanager
    def start(scenario: str | None = None, **env: str) -> Iterator[RunningService]:
        log = tmp_path / f"service-{next(services)}.log"
        settings = {**BASE_ENV, **env}
        with served(project, PACKAGE, fake_lm, log, scenario=scenario, env=settings) as service:
            yield service

    return start


def lm_requests_for(fake_lm: FakeLM, asked: dict[str, str]) -> int:
    """How many chat requests the fake LM got whose prompt holds ``asked``'s question."""
    return sum(asked["question"] in prompt for prompt in fake_lm.prompts())


def check_one_run(events: list[dict[str, Any]]) -> str:
    """Assert the events are one run, every position once and in order; its streamed text."""
    assert events, "no event"
    assert events[-1]["event"] == "done", events[-1]
    ids = [event["id"] for event in events]
    runs = {event_id.rpartition("-")[0] for event_id in ids}
    assert len(runs) == 1, runs
    positions = [int(event_id.rpartition("-")[2]) for event_id in ids]
    assert positions == list(range(1, len(positions) + 1)), positions  # no loss, dup, reorder
    data = [json.loads(event["data"]) for event in events]
    streamed = "".join(
        d["chunk"] for d, e in zip(data, events, strict=True) if e["event"] == "token"
    )
    (prediction,) = [d for d, e in zip(data, events, strict=True) if e["event"] == "prediction"]
    assert streamed == prediction["outputs"]["answer"]
    return streamed


# --- One process: real clients reconnect on their own ------------------------------


@pytest.mark.parametrize("client", [*NODE_SCRIPTS, "httpx-sse"])
def test_a_client_reconnecting_on_its_own_resumes_the_run_with_no_gap_and_one_lm_request(
    serve: Callable[..., Any], fake_lm: FakeLM, client: str
) -> None:
    with (
        serve("delay-10ms+words-40") as service,
        CuttingProxy(service.url, lambda index: 6 if index == 0 else None) as proxy,
    ):
        asked = question()
        url = f"{proxy.url}/v1/qa/stream"
        if client == "httpx-sse":
            events = asyncio.run(httpx_sse_events(url, asked, timeout=30))
        else:
            events = node_events(client, url, asked, timeout=30)
        assert proxy.cuts == 1 and proxy.connections >= 2
        check_one_run(events)
        assert lm_requests_for(fake_lm, asked) == 1


def test_a_client_back_after_the_grace_period_gets_a_clear_404_not_a_new_run(
    serve: Callable[..., Any], fake_lm: FakeLM
) -> None:
    with serve("delay-50ms+words-100", RUN_GRACE="0.2") as service:
        asked = question()

        async def leave_then_return() -> httpx.Response:
            async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
                last = None
                async with client.stream("POST", "/v1/qa/stream", json=asked) as response:
                    async for line in response.aiter_lines():
                        if line.startswith("id: "):
                            last = line[4:]
                            break
                assert last is not None
                await asyncio.sleep(1.5)  # past the grace period: the run was cancelled
                state = await client.get(f"/v1/runs/{last.rpartition('-')[0]}")
                assert state.json()["status"] == "cancelled"
                assert state.json()["error"]["code"] == "disconnected"
                return await client.post(
                    "/v1/qa/stream", json=asked, headers={"Last-Event-ID": "f" * 32 + "-3"}
                )

        refused = asyncio.run(leave_then_return())
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "run_not_found"
        assert lm_requests_for(fake_lm, asked) == 1


# --- Many replicas: Redis and a load balancer --------------------------------------


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@contextmanager
def replicas(
    serve: Callable[..., Any],
    redis_server: RedisServer,
    count: int = 3,
    scenario: str = "delay-5ms+words-30",
    **env: str,
) -> Iterator[list[RunningService]]:
    settings = {"REDIS_URL": redis_server.url, "RUN_HEARTBEAT_TIMEOUT": "2", **env}
    with ExitStack() as stack:
        yield [stack.enter_context(serve(scenario, **settings)) for _ in range(count)]


def test_streams_cut_at_random_points_resume_through_the_balancer_on_any_replica(
    serve: Callable[..., Any], fake_lm: FakeLM, redis_server: RedisServer
) -> None:
    streams = 100  # each cut once, at its own point: every position 1-25 several times over
    rng = random.Random(15)

    def cut_first_requests(index: int, headers: dict[bytes, bytes]) -> int | None:
        # A stream's first request is cut at a random event; its resumes are not.
        return None if b"last-event-id" in headers else rng.randint(1, 25)

    with (
        replicas(serve, redis_server) as services,
        HAProxy([service.url for service in services]) as balancer,
        CuttingProxy(balancer.url, cut_request=cut_first_requests) as proxy,
    ):

        async def one(asked: dict[str, str], client: httpx.AsyncClient) -> list[Any]:
            return await httpx_sse_events(
                f"{proxy.url}/v1/qa/stream", asked, timeout=120, client=client
            )

        async def all_streams() -> list[list[Any]]:
            limits = httpx.Limits(max_connections=400, max_keepalive_connections=0)
            async with httpx.AsyncClient(
                timeout=httpx.Timeout(10, read=None), limits=limits
            ) as client:
                gate = asyncio.Semaphore(50)

                async def gated(asked: dict[str, str]) -> list[Any]:
                    async with gate:
                        return await one(asked, client)

                return await asyncio.gather(*(gated(a) for a in asked_all))

        asked_all = [question() for _ in range(streams)]
        results = asyncio.run(all_streams())
        for events in results:
            check_one_run(events)
        assert proxy.cuts == streams  # each once, at its own point
        for asked in asked_all:
            assert lm_requests_for(fake_lm, asked) == 1


def test_a_flush_interval_paces_a_reader_of_the_redis_log_on_another_replica(
    serve: Callable[..., Any], fake_lm: FakeLM, redis_server: RedisServer
) -> None:
    """STREAM_FLUSH_INTERVAL is the reader's pacing, whatever the log: a reader on another
    replica than its run's gets every event once and in order, tokens several to a write."""
    pace = {"STREAM_FLUSH_INTERVAL": "0.1"}
    with replicas(serve, redis_server, 2, "delay-10ms+words-40", **pace) as (first, second):

        async def start_here_read_there() -> tuple[str, list[bytes]]:
            async with (
                httpx.AsyncClient(timeout=30) as client,
                client.stream("POST", f"{first.url}/v1/qa/stream", json=question()) as started,
            ):
                run_id = started.headers["x-run-id"]
                url = f"{second.url}/v1/runs/{run_id}/events"
                async with client.stream("GET", url, params={"after": 0}) as joined:
                    assert joined.status_code == 200
                    return run_id, [chunk async for chunk in joined.aiter_raw()]

        run_id, reads = asyncio.run(start_here_read_there())
    frames = [f for f in b"".join(reads).decode().split("\n\n") if f.startswith("event:")]
    ids = [line[4:] for f in frames for line in f.split("\n") if line.startswith("id: ")]
    assert ids == [f"{run_id}-{n}" for n in range(1, len(frames) + 1)]
    assert frames[-1].startswith("event: done")
    tokens = sum(f.startswith("event: token") for f in frames)
    assert tokens >= 40
    # 40 tokens 10 ms apart: one read each without the interval, a few with 0.1 s.
    assert len(reads) < tokens / 3


def test_a_cancel_through_another_replica_closes_the_lm_stream_within_a_second(
    serve: Callable[..., Any], fake_lm: FakeLM, redis_server: RedisServer
) -> None:
    with replicas(serve, redis_server, 2, "delay-100ms+words-300") as (first, second):
        before = fake_lm.stats()["streams_disconnected"]

        async def start_then_cancel() -> tuple[list[str], dict[str, Any], float]:
            async with httpx.AsyncClient(timeout=10) as client:
                lines: list[str] = []
                async with client.stream(
                    "POST", f"{first.url}/v1/qa/stream", json=question()
                ) as response:
                    run_id = response.headers["x-run-id"]
                    reading = response.aiter_lines()
                    async for line in reading:
                        lines.append(line)
                        if line.startswith("event: token"):
                            break
                    cancelled = await client.post(f"{second.url}/v1/runs/{run_id}/cancel")
                    asked_at = time.monotonic()
                    async for line in reading:
                        lines.append(line)
                return lines, cancelled.json(), asked_at

        # A stream that would take 30 s: only the cancel ends it early.
        lines, state, asked_at = asyncio.run(start_then_cancel())
        assert state["status"] == "cancelled"
        assert "event: error" in lines and any('"code":"cancelled"' in line for line in lines)
        deadline = asked_at + 1.0
        while fake_lm.stats()["streams_disconnected"] == before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fake_lm.stats()["streams_disconnected"] == before + 1


def test_a_replica_killed_mid_run_leaves_its_readers_done_or_run_lost_never_a_hang(
    serve: Callable[..., Any], fake_lm: FakeLM, redis_server: RedisServer
) -> None:
    with (
        replicas(serve, redis_server, 2, "delay-20ms+words-60") as services,
        HAProxy([service.url for service in services]) as balancer,
    ):
        doomed = services[0]

        async def runs_and_a_kill() -> list[list[Any]]:
            async def one(delay: float) -> list[Any]:
                await asyncio.sleep(delay)
                url = f"{balancer.url}/v1/qa/stream"
                return await httpx_sse_events(url, question(), timeout=60)

            streams = [asyncio.ensure_future(one(i * 0.02)) for i in range(50)]

            # Kill it once it runs some of them and has written events of them (about
            # twenty events' data), however loaded the machine is: a client that got no
            # event before the kill re-sends its POST, a new run elsewhere that ends done.
            def started(stats: dict[str, int]) -> bool:
                return stats.get("owned_runs", 0) >= 5 and stats.get("kept_bytes", 0) >= 4000

            async with asyncio.timeout(30):
                # The other process has no event to wait for: poll it.
                while not started(await asyncio.to_thread(debug_stats, doomed)):  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            doomed.process.send_signal(signal.SIGKILL)
            return await asyncio.gather(*streams)

        started = time.monotonic()
        results = asyncio.run(runs_and_a_kill())
        assert time.monotonic() - started < 50  # every client ended: none hangs
    endings = []
    for events in results:
        last = events[-1]
        if last["event"] == "done":
            check_one_run(events)
            endings.append("done")
        else:
            assert last["event"] == "error", last
            assert json.loads(last["data"])["code"] == "run_lost"
            positions = [int(e["id"].rpartition("-")[2]) for e in events[:-1]]
            assert positions == list(range(1, len(positions) + 1))  # nothing lost before it
            endings.append("run_lost")
    assert "run_lost" in endings and "done" in endings, endings


def test_redis_killed_and_restarted_gives_typed_errors_and_the_service_recovers(
    serve: Callable[..., Any], fake_lm: FakeLM
) -> None:
    with RedisServer() as redis_server, serve(REDIS_URL=redis_server.url) as service:

        def ready() -> int:
            return httpx.get(f"{service.url}/readyz", timeout=5).status_code

        def stream() -> httpx.Response:
            with httpx.stream(
                "POST", f"{service.url}/v1/qa/stream", json=question(), timeout=10
            ) as response:
                response.read()
                return response

        assert ready() == 200 and stream().status_code == 200
        redis_server.kill()
        assert wait_until(lambda: ready() == 503)
        refused = stream()
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "store_unavailable"
        assert refused.headers["Retry-After"] == "1"
        redis_server.start()
        assert wait_until(lambda: ready() == 200)
        recovered = stream()
        assert recovered.status_code == 200, recovered.text
        assert "event: done" in recovered.text
        assert httpx.get(f"{service.url}/healthz", timeout=5).status_code == 200


# --- What the logs keep ------------------------------------------------------------


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_finished_runs_logs_are_bounded_while_kept_and_gone_after_their_ttl(
    serve: Callable[..., Any], fake_lm: FakeLM, store: str, redis_server: RedisServer
) -> None:
    runs = 300
    env = {"RUN_TTL": "12", "MAX_CONCURRENT_RUNS": "200"}  # longer than the 300 runs take
    if store == "redis":
        env |= {"REDIS_URL": redis_server.url, "REDIS_PREFIX": f"ttl-{os.getpid()}:"}
    with serve("words-8", **env) as service:

        async def many() -> None:
            # A connection per request: reusing one that uvicorn's keep-alive timeout is
            # closing at that moment is a client's race (ReadError), not the service's.
            limits = httpx.Limits(max_connections=50, max_keepalive_connections=0)
            async with httpx.AsyncClient(base_url=service.url, timeout=30, limits=limits) as client:
                gate = asyncio.Semaphore(50)

                async def one() -> None:
                    async with gate:
                        response = await client.post("/v1/qa/stream", json=question())
                        assert response.status_code == 200 and "event: done" in response.text

                await asyncio.gather(*(one() for _ in range(runs)))

        asyncio.run(many())
        stats = httpx.get(f"{service.url}/_debug/stats", timeout=5).json()
        if store == "memory":
            assert stats["kept_runs"] == runs
            # docs/benchmarks.md: what a run of this size (13 events) keeps in memory.
            assert stats["kept_bytes"] < runs * 4_000
            assert wait_until(
                lambda: httpx.get(f"{service.url}/_debug/stats").json()["kept_runs"] == 0,
                timeout=40,
            )
        else:
            client = redis_server.client()
            try:
                prefix = env["REDIS_PREFIX"]
                assert len(list(client.scan_iter(f"{prefix}run:*"))) == 2 * runs  # record, log
                # docs/benchmarks.md: a run of this size takes under 8 KB of Redis, both keys.
                log_key = next(iter(client.scan_iter(f"{prefix}run:*:log")))
                record_key = log_key.removesuffix(b":log")
                used = [client.memory_usage(key) or 0 for key in (log_key, record_key)]
                assert 0 < sum(used) < 8_000, used
                assert wait_until(lambda: not list(client.scan_iter(f"{prefix}run:*")), timeout=40)
            finally:
                client.close()
