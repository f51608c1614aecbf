"""A hostile client can neither redirect, starve nor crash a generated service.

Each test serves a generated project under uvicorn on the fake LM and attacks
it over real HTTP (or a raw socket), the way the security review did. Every
test is named after what it pins; each failed before its fix.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from dspy_forge.dev.devserver import RunningService, fake_lm_env, running_service
from dspy_forge.dev.fakelm.testing import FakeLM, running_fake_lm
from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec_text
from tests.projects import run_project_tests

from .serving import debug_stats, served, wait_until

SPEC = """
version: 1
service: {name: exposed, title: Exposed}
lm: {model: openai/gpt-4o-mini, api_key_env: EXPOSED_LM_KEY}
tools:
  search:
    description: Search for information.
    args: {query: {type: str, description: What to look for.}}
programs:
  ask:
    module: Predict
    signature: >-
      question, config: dict[str, str], lm: str | None, demos: list[str] | None,
      instance: str | None, new_signature: str | None, prediction: dict[str, str] | None,
      flag: bool | None, ratio: float | None -> answer
    stream: [{field: answer}]
  agent:
    module: ReAct
    signature: "question, max_iters: int -> answer"
    tools: [search]
    max_iters: 2
    stream: [{field: answer}]
"""
QUESTION = {"question": "What is the meaning of life?", "config": {"tone": "dry"}}
BASE_ENV = {"LM_NUM_RETRIES": "0", "DEBUG_STATS": "true"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(load_spec_text(SPEC), tmp_path_factory.mktemp("exposed") / "project")


@pytest.fixture
def serve(project: Path, fake_lm: FakeLM, tmp_path: Path) -> Callable[..., Any]:
    """Serve the project on the fake LM in ``scenario``, with settings from ``env``."""

    @contextmanager
    def start(scenario: str | None = None, **env: str) -> Iterator[tuple[RunningService, Path]]:
        log = tmp_path / "service.log"
        settings = {**BASE_ENV, **env}
        with served(project, "exposed", fake_lm, log, scenario=scenario, env=settings) as service:
            yield service, log

    return start


def scenario_requests(fake_lm: FakeLM, scenario: str) -> int:
    return fake_lm.stats()["scenarios"].get(scenario, {}).get("requests", 0)


# --- The LM call cannot be redirected -------------------------------------------------


def test_an_input_named_config_cannot_redirect_the_lm_call(
    serve: Callable[..., Any], fake_lm: FakeLM
) -> None:
    with running_fake_lm() as attacker, serve(EXPOSED_LM_KEY="server-secret") as (service, _):
        fake_lm.reset()
        hostile = {
            **QUESTION,
            "config": {"api_base": attacker.api_base, "api_key": "stolen", "model": "x"},
            "lm": "openai/attacker",
            "demos": ["DEMO-REACHES-THE-PROMPT"],
            "instance": "INSTANCE-VALUE",
            "new_signature": "NEW-SIGNATURE-VALUE",
            "prediction": {"type": "content", "content": "PREDICTED"},
        }
        for path in ("/v1/ask", "/v1/ask/stream"):
            response = httpx.post(f"{service.url}{path}", json=hostile, timeout=30)
            assert response.status_code == 200, response.text
        assert attacker.stats()["requests"] == 0
        prompts = fake_lm.prompts()
        assert len(prompts) == 2
        for prompt in prompts:
            # Each hostile value reached the LM as the signature field it was sent as.
            for value in (
                attacker.api_base,
                "openai/attacker",
                "DEMO-REACHES-THE-PROMPT",
                "INSTANCE-VALUE",
                "NEW-SIGNATURE-VALUE",
                "PREDICTED",
            ):
                assert value in prompt


def test_a_client_max_iters_does_not_override_the_spec(
    serve: Callable[..., Any], fake_lm: FakeLM
) -> None:
    scenario = "steps-20"
    with serve(scenario) as (service, _):
        fake_lm.reset()
        body = {"question": "Loop for long?", "max_iters": 8}
        response = httpx.post(f"{service.url}/v1/agent", json=body, timeout=30)
        assert response.status_code == 200, response.text
        # The spec's max_iters (2 steps), then the extraction: three LM calls, not nine.
        assert scenario_requests(fake_lm, scenario) == 3
        assert "Loop for long?" in fake_lm.prompts()[0]


def test_the_project_tests_pass_with_inputs_named_like_call_keywords(project: Path) -> None:
    run_project_tests(project)


def test_the_public_field_names_are_kept_in_the_api(serve: Callable[..., Any]) -> None:
    with serve() as (service, _):
        schema = httpx.get(f"{service.url}/openapi.json", timeout=10).json()
        request = schema["components"]["schemas"]["AskRequest"]["properties"]
        assert {"config", "lm", "demos", "instance", "new_signature", "prediction"} <= set(request)
        assert not any(name.endswith("_") for name in request)


# --- Capacity cannot be held by clients that do nothing --------------------------------


def _raw_stream_request(url: str, path: str, body: dict[str, Any]) -> socket.socket:
    """Send a streaming request on a socket with a tiny receive buffer, and read nothing."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.connect((host, int(port)))
    payload = json.dumps(body).encode()
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    return sock


def _read_until(sock: socket.socket, marker: bytes, timeout: float = 30.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_a_reader_that_stops_reading_holds_neither_the_run_nor_its_slot_nor_memory(
    serve: Callable[..., Any],
) -> None:
    settings = {
        "MAX_CONCURRENT_RUNS": "1",
        "RUN_LOG_MAX_EVENTS": "50",
        "IDLE_TIMEOUT": "120",
        "RUN_DEADLINE": "120",
    }
    with serve("words-3000", **settings) as (service, _):
        sleeper = _raw_stream_request(service.url, "/v1/ask/stream", QUESTION)
        try:
            assert wait_until(lambda: debug_stats(service)["active_runs"] == 1, 10)
            # The run goes on at its own pace, ends, and frees the slot for someone else.
            assert wait_until(lambda: debug_stats(service)["active_runs"] == 0, 60)
            # What it keeps for the sleeper is its last 50 events (the prediction, about
            # 20 KB of text, among them), not 3,000 tokens' worth (over 500 KB).
            assert debug_stats(service)["kept_bytes"] < 60_000
            response = httpx.post(f"{service.url}/v1/ask", json=QUESTION, timeout=60)
            assert response.status_code == 200
            # The sleeper, if it ever reads, gets the events in order, then the end: done
            # if the kernel's buffers held what it did not read, else the reason it lost
            # its place (tests/unit/runtime/test_run.py pins that case down).
            tail = _read_until(sleeper, b"\r\n0\r\n\r\n")
            assert b"event: done" in tail or b'"code":"slow_reader"' in tail
            positions = [int(n) for n in re.findall(rb"\nid: [0-9a-f]{32}-([0-9]+)\n", tail)]
            assert positions == sorted(set(positions)) and positions[0] == 1
        finally:
            sleeper.close()


@pytest.mark.parametrize("endpoint", ["/v1/ask", "/v1/ask/batch"])
def test_json_and_batch_runs_stop_when_their_client_leaves(
    serve: Callable[..., Any], fake_lm: FakeLM, endpoint: str
) -> None:
    scenario = "first-8000ms"
    body = {"inputs": [QUESTION, QUESTION]} if endpoint.endswith("batch") else QUESTION
    with serve(scenario) as (service, _):
        fake_lm.reset()
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{service.url}{endpoint}", json=body, timeout=1.0)
        assert wait_until(lambda: debug_stats(service)["active_runs"] == 0, 3)
        stats = fake_lm.stats()["scenarios"][scenario]
        assert wait_until(
            lambda: (
                fake_lm.stats()["scenarios"][scenario]["completions_disconnected"]
                == stats["requests"]
            ),
            3,
        )


def test_a_body_that_never_arrives_gets_408_and_the_connection_back(
    serve: Callable[..., Any],
) -> None:
    with serve(BODY_TIMEOUT="1") as (service, _):
        host, port = service.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"question"'
            )
            started = time.monotonic()
            reply = _read_until(sock, b"}}", timeout=10)
        assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
        assert b'"code":"request_timeout"' in reply
        assert time.monotonic() - started < 8


def test_one_api_key_cannot_take_every_slot(serve: Callable[..., Any]) -> None:
    keys = {"API_KEYS": "greedy-key,patient-key", "MAX_CONCURRENT_RUNS_PER_KEY": "2"}
    with serve("first-3000ms", **keys) as (service, _):

        async def crowd() -> tuple[list[int], int]:
            async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
                greedy = {"Authorization": "Bearer greedy-key"}
                held = [
                    asyncio.create_task(client.post("/v1/ask", json=QUESTION, headers=greedy))
                    for _ in range(2)
                ]
                await asyncio.sleep(1.0)
                extra = await client.post("/v1/ask", json=QUESTION, headers=greedy)
                other = await client.post(
                    "/v1/ask", json=QUESTION, headers={"X-API-Key": "patient-key"}
                )
                assert extra.headers["retry-after"] == "1"
                assert extra.json()["error"]["code"] == "too_many_runs"
                statuses = [r.status_code for r in await asyncio.gather(*held)]
                return [*statuses, extra.status_code], other.status_code

        statuses, other = asyncio.run(crowd())
        assert statuses == [200, 200, 429]
        assert other == 200


# --- One character cannot crash a response ---------------------------------------------

BAD_VALUES = [
    ("NaN", '{"question": NaN, "config": {}}'),
    ("Infinity", '{"question": "q", "config": {}, "ratio": Infinity}'),
    ("1e999", '{"question": "q", "config": {}, "ratio": 1e999}'),
    ("lone surrogate key", '{"question": "q", "config": {}, "\\ud800": 1}'),
    ("lone surrogate in mistyped value", '{"question": 1, "config": {"a": 1}, "flag": "\\udfff"}'),
    ("strict boolean", '{"question": "q", "config": {}, "flag": 0}'),
    ("misspelt optional input", '{"question": "q", "config": {}, "falg": true}'),
]


@pytest.mark.parametrize("endpoint", ["/v1/ask", "/v1/ask/stream", "/v1/ask/batch"])
def test_malformed_values_get_a_json_422_with_the_request_id(
    serve: Callable[..., Any], endpoint: str
) -> None:
    with serve() as (service, _):
        for what, raw in [
            *BAD_VALUES,
            ("lone surrogate in text", '{"question": "\\ud800", "config": {}}'),
        ]:
            body = f'{{"inputs": [{raw}]}}' if endpoint.endswith("batch") else raw
            response = httpx.post(
                f"{service.url}{endpoint}",
                content=body.encode(),
                headers={"Content-Type": "application/json", "X-Request-ID": "bad-1"},
                timeout=30,
            )
            assert response.status_code == 422, (what, response.status_code, response.text)
            error = response.json()["error"]
            assert error["code"] == "invalid_input", what
            assert error["request_id"] == "bad-1", what
            assert response.headers["x-request-id"] == "bad-1"
            assert error["fields"] and all("input" not in f for f in error["fields"])


def test_a_surrogate_pair_split_across_chunks_streams_to_done(
    serve: Callable[..., Any],
) -> None:
    with serve("split-surrogates") as (service, _):

        async def read() -> list[tuple[str, Any]]:
            async with (
                httpx.AsyncClient(base_url=service.url, timeout=30) as client,
                aconnect_sse(client, "POST", "/v1/ask/stream", json=QUESTION) as source,
            ):
                assert source.response.status_code == 200
                return [(sse.event, json.loads(sse.data)) async for sse in source.aiter_sse()]

        events = asyncio.run(read())
        names = [name for name, _ in events]
        assert names[-2:] == ["prediction", "done"], names
        answer = events[-2][1]["outputs"]["answer"]
        assert answer.endswith("\N{SLIGHTLY SMILING FACE}")
        tokens = "".join(data["chunk"] for name, data in events if name == "token")
        assert tokens == answer
        json_answer = httpx.post(f"{service.url}/v1/ask", json=QUESTION, timeout=30)
        assert json_answer.status_code == 200


def test_every_error_of_every_layer_is_the_json_error_body(serve: Callable[..., Any]) -> None:
    with serve() as (service, _):
        cases = [
            ("GET", "/nowhere", None, 404, "not_found"),
            ("GET", "/v1/ask", None, 405, "method_not_allowed"),
            ("POST", "/v1/ask", b'{"question": ', 400, "invalid_json"),
            ("POST", "/v1/ask", b"\xff\xfe{}", 400, "invalid_json"),
        ]
        for method, path, content, status, code in cases:
            response = httpx.request(
                method,
                f"{service.url}{path}",
                content=content,
                headers={"Content-Type": "application/json"},
                timeout=10,
            )
            assert response.status_code == status, (path, response.text)
            error = response.json()["error"]
            assert error["code"] == code
            assert error["request_id"] == response.headers["x-request-id"]


def test_sigterm_gives_in_flight_json_and_batch_requests_503(
    serve: Callable[..., Any],
) -> None:
    import signal

    with serve("first-20000ms", SHUTDOWN_GRACE="1") as (service, _):

        async def requests_then_terminate() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
                pending = [
                    asyncio.create_task(client.post("/v1/ask", json=QUESTION)),
                    asyncio.create_task(client.post("/v1/ask/batch", json={"inputs": [QUESTION]})),
                ]
                await asyncio.sleep(1.0)
                service.process.send_signal(signal.SIGTERM)
                return list(await asyncio.gather(*pending))

        responses = asyncio.run(requests_then_terminate())
        for response in responses:
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "shutting_down"


def test_blank_api_keys_are_refused_when_required_and_warned_about_otherwise(
    project: Path, fake_lm: FakeLM, tmp_path: Path
) -> None:
    log = tmp_path / "blank.log"
    env = {**fake_lm_env(fake_lm.api_base), "API_KEYS": ","}
    with log.open("wb") as sink, running_service(project, "exposed", env, log=sink) as service:
        assert httpx.get(f"{service.url}/healthz", timeout=5).status_code == 200
    assert "API_KEYS is set but holds no key" in log.read_text()
    with (
        pytest.raises(RuntimeError, match="exited"),
        log.open("wb") as sink,
        running_service(
            project, "exposed", {**env, "API_KEYS_REQUIRED": "true"}, log=sink, startup_timeout=30
        ),
    ):
        pass
    assert "API_KEYS holds no key" in log.read_text()
