"""MCP at ``/mcp`` through the ``mcp`` SDK's own client, over streamable HTTP.

A served project (``chat_service``) on the fake LM: every program is listed as
a tool with its request and response schemas, a call answers with
``structuredContent`` that validates against the output schema (the client
checks it), status events arrive as progress, failed runs are ``isError``
results typed by our code, an unknown tool is a JSON-RPC error, the API key is
enforced, and a cancelled call stops the upstream LM stream.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from dspy_forge.dev.devserver import RunningService, fake_lm_env
from dspy_forge.dev.fakelm.testing import FakeLM

from .chat_service import KEY, PACKAGE, project, serving
from .serving import debug_stats, wait_until

__all__ = ["project"]

QUESTION = "What is the meaning of life?"
PROGRAMS = ["agent", "convo", "qa", "quiet", "thinker"]
ARGUMENTS: dict[str, dict[str, Any]] = {
    "agent": {"question": QUESTION},
    "convo": {"question": QUESTION, "history": {"messages": []}},
    "qa": {"question": QUESTION},
    "quiet": {"question": QUESTION, "tone": "dry"},
    "thinker": {"question": QUESTION},
}


def client(service: RunningService, headers: dict[str, str] | None = None) -> Client:
    """The SDK's client on the service's /mcp, sending ``headers`` on every request."""
    http = create_mcp_http_client(headers=headers)
    return Client(streamable_http_client(f"{service.url}/mcp", http_client=http))


async def call(
    service: RunningService, program: str, arguments: dict[str, Any] | None = None
) -> tuple[Any, list[tuple[float, str | None]]]:
    """Call one program's tool; its result and the progress it reported."""
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    async with client(service) as session:
        await session.list_tools()  # the client validates structuredContent against it
        result = await session.call_tool(
            program,
            ARGUMENTS[program] if arguments is None else arguments,
            progress_callback=on_progress,
        )
    return result, progress


def leaf(error: BaseException) -> BaseException:
    """The one exception inside the exception groups of the client's task groups."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


@pytest.fixture(scope="module")
def service(
    project: Path, fake_lm: FakeLM, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    with serving(project, fake_lm, tmp_path_factory.mktemp("logs"))() as running:
        yield running


@pytest.fixture
def start(project: Path, fake_lm: FakeLM, tmp_path: Path) -> Callable[..., Any]:
    return serving(project, fake_lm, tmp_path)


def test_every_program_is_a_tool_with_its_schemas(service: RunningService) -> None:
    async def listed() -> Any:
        async with client(service) as session:
            return (await session.list_tools()).tools

    tools = {tool.name: tool for tool in asyncio.run(listed())}
    assert sorted(tools) == PROGRAMS
    for program in httpx.get(f"{service.url}/v1/programs").json():
        tool = tools[program["name"]]
        assert tool.input_schema == program["input_schema"]
        assert tool.output_schema == program["output_schema"]
        assert program["protocols"]["mcp"] == "/mcp"


@pytest.mark.parametrize("program", PROGRAMS)
def test_a_call_answers_with_structured_content(service: RunningService, program: str) -> None:
    result, _ = asyncio.run(call(service, program))
    assert not result.is_error, result.content
    outputs = result.structured_content
    assert isinstance(outputs["answer"], str) and outputs["answer"]
    native = httpx.post(f"{service.url}/v1/{program}", json=ARGUMENTS[program]).json()
    assert set(outputs) == set(native)


def test_status_events_are_progress(service: RunningService) -> None:
    result, progress = asyncio.run(call(service, "agent"))
    assert not result.is_error
    values = [value for value, _ in progress]
    assert values == list(range(1, len(values) + 1))  # a counter of the status events
    messages = {message for _, message in progress}
    assert {"Thinking", "Using search", "search answered"} <= messages


def test_failures_are_typed_tool_errors(service: RunningService, start: Callable[..., Any]) -> None:
    invalid, _ = asyncio.run(call(service, "quiet", {"question": QUESTION}))
    assert invalid.is_error and invalid.structured_content["error"]["code"] == "invalid_arguments"
    assert "tone" in invalid.content[0].text
    with pytest.raises(BaseException) as raised:
        asyncio.run(call(service, "nope", {}))
    unknown = leaf(raised.value)  # the client's task groups wrap it
    assert isinstance(unknown, MCPError)
    assert unknown.code == -32602 and "nope" in unknown.message
    with start(MAX_INPUT_CHARS="10") as strict:  # an input the runs check, not the schema
        too_long, _ = asyncio.run(call(strict, "qa"))
    assert too_long.is_error and too_long.structured_content["error"]["code"] == "invalid_arguments"
    assert "question" in too_long.content[0].text
    with start("http-500") as broken:
        failed, _ = asyncio.run(call(broken, "qa"))
    assert failed.is_error
    error = failed.structured_content["error"]
    assert error["code"] == "upstream_error" and error["message"] == failed.content[0].text


def test_limits_and_metrics_are_every_runs(start: Callable[..., Any], fake_lm: FakeLM) -> None:
    async def two_at_once(service: RunningService) -> Any:
        async with client(service) as session:
            first = asyncio.create_task(session.call_tool("qa", ARGUMENTS["qa"]))
            # Polling the fake LM: nothing here can wake on "the first run holds its slot".
            while (await fake_lm.astats())["streams_open"] == 0:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            second = await session.call_tool("qa", ARGUMENTS["qa"])
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            return second

    with start("delay-100ms+words-200", MAX_CONCURRENT_RUNS="1") as service:
        refused = asyncio.run(two_at_once(service))
        assert refused.is_error and refused.structured_content["error"]["code"] == "overloaded"
        metrics = httpx.get(f"{service.url}/metrics").text
    counted = 'dspy_requests_total{endpoint="stream",outcome="overloaded",program="qa"} 1.0'
    assert counted in metrics


def test_a_handshake_era_client_is_served_too(service: RunningService) -> None:
    async def legacy() -> tuple[str, Any]:
        transport = streamable_http_client(f"{service.url}/mcp")
        async with Client(transport, mode="legacy") as session:  # initialize, 2025-11-25
            await session.list_tools()
            return session.protocol_version, await session.call_tool("qa", ARGUMENTS["qa"])

    version, result = asyncio.run(legacy())
    assert version == "2025-11-25"
    assert not result.is_error and result.structured_content["answer"]


def test_the_api_key_is_enforced(start: Callable[..., Any]) -> None:
    async def listed(service: RunningService, headers: dict[str, str] | None) -> list[str]:
        async with client(service, headers) as session:
            return sorted(tool.name for tool in (await session.list_tools()).tools)

    with start(API_KEYS=KEY) as service:
        with pytest.raises(BaseException) as refused:
            asyncio.run(listed(service, {"Authorization": "Bearer wrong"}))
        assert isinstance(leaf(refused.value), MCPError)
        # What the SDK saw: 401 with a Bearer challenge, the HTTP terms MCP's auth uses.
        raw = httpx.post(f"{service.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert raw.status_code == 401 and raw.headers["WWW-Authenticate"] == "Bearer"
        assert asyncio.run(listed(service, {"Authorization": f"Bearer {KEY}"})) == PROGRAMS
        assert asyncio.run(listed(service, {"X-API-Key": KEY})) == PROGRAMS


def test_cancelling_a_call_stops_the_upstream_lm_stream(
    start: Callable[..., Any], fake_lm: FakeLM
) -> None:
    async def cancel_mid_run(service: RunningService) -> None:
        async with client(service) as session:
            task = asyncio.create_task(session.call_tool("qa", ARGUMENTS["qa"]))
            # Polling the fake LM: nothing here can wake on "the LM is streaming".
            while (await fake_lm.astats())["streams_open"] == 0:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            task.cancel()  # the SDK closes the call's response stream
            with pytest.raises(asyncio.CancelledError):
                await task

    with start("delay-100ms+words-200", RUN_GRACE="30") as service:
        before = fake_lm.stats()["streams_disconnected"]
        asyncio.run(cancel_mid_run(service))
        assert wait_until(lambda: fake_lm.stats()["streams_disconnected"] == before + 1)
        assert wait_until(lambda: fake_lm.stats()["streams_open"] == 0)
        assert wait_until(lambda: debug_stats(service)["active_runs"] == 0)


def test_the_environment_turns_the_protocol_off(start: Callable[..., Any]) -> None:
    with start(PROTOCOL_MCP="false") as service:
        response = httpx.post(f"{service.url}/mcp", json={"jsonrpc": "2.0", "id": 1})
        assert response.status_code == 404
        assert "mcp" not in httpx.get(f"{service.url}/v1/programs").text


# Builds the app, checks that the SDK is not imported, then serves one MCP call through
# Starlette's TestClient (whose lifespan stops the session manager at the end).
LAZY_SDK = """
import sys

from fastapi.testclient import TestClient

from {package}.main import app

before = "mcp" in sys.modules
with TestClient(app) as http:
    first = http.post("/mcp", json={body}, headers={headers})
tools = ",".join(sorted(tool["name"] for tool in first.json()["result"]["tools"]))
print(before, "mcp" in sys.modules, first.status_code, tools, app.state.mcp._serving.done())
"""


def test_the_sdk_is_imported_on_the_first_mcp_request(project: Path, fake_lm: FakeLM) -> None:
    """Start-up does not pay for the MCP SDK; the first request loads and starts it."""
    envelope = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": envelope}}
    headers = {
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {KEY}",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/list",
    }
    script = LAZY_SDK.format(package=PACKAGE, body=listing, headers=headers)
    env = {
        **os.environ,
        **fake_lm_env(fake_lm.api_base),
        "PYTHONPATH": str(project / "src"),
        "API_KEYS": KEY,
    }
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=project, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    before, after, status, tools, stopped = done.stdout.split()
    assert (before, after, status, tools) == ("False", "True", "200", ",".join(PROGRAMS))
    assert stopped == "True"  # the lifespan's end stopped the session manager's task
