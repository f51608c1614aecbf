"""Status messages say what happened, and tools tell the LM their spec's arguments.

A generated service is served under uvicorn on the fake LM, whose record of
the requests it received shows what the LM was told; the stream shows what a
client is told.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from dspy_forge.dev.devserver import RunningService, fake_lm_env, running_service
from dspy_forge.dev.fakelm.testing import FakeLM
from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec_text

from .serving import served

SPEC = """
version: 1
service: {name: truthful, title: Truthful}
lm: {model: openai/gpt-4o-mini, api_key_env: TRUTHFUL_LM_KEY}
tools:
  lookup:
    description: Look up an order.
    args:
      order_id: {type: str, description: "The order's id, e.g. A-1001."}
      include_items: {type: bool, description: Whether to list the order's items.}
programs:
  think:
    module: ChainOfThought
    signature: "question -> answer"
    stream: [{field: answer}]
    status:
      module_start: "Starting {module}"
      module_end: "Done with {module}"
      lm_start: "Asking {model}"
      lm_end: "{model} answered"
      lm_error: "{model} failed: {error}"
  think_aloud:
    module: ChainOfThought
    signature: "question -> answer"
    status_modules: all
    status: {module_start: "Starting {module}"}
  agent:
    module: ReAct
    signature: "question -> answer"
    tools: [lookup]
    max_iters: 4
    stream: [{field: next_thought, allow_reuse: true}]
    status:
      tool_start: "Using {tool}"
      tool_end: "{tool} returned"
      tool_error: "{tool} failed: {error}"
      lm_start: "Asking {model}"
      lm_end: "{model} answered"
"""
WORKING_TOOL = '''\
async def lookup(order_id: str, include_items: bool) -> str:
    """Look up an order."""
    return f"order {order_id}: shipped"
'''
STALE_TOOL = '''\
async def lookup(order_id: str) -> str:
    """Look up an order (written before the spec gained include_items)."""
    return f"order {order_id}: shipped"
'''
QUESTION = {"question": "Where is my order?"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(load_spec_text(SPEC), tmp_path_factory.mktemp("truthful") / "project")


@pytest.fixture
def serve(project: Path, fake_lm: FakeLM, tmp_path: Path) -> Callable[..., Any]:
    @contextmanager
    def start(
        scenario: str | None = None, tool: str | None = WORKING_TOOL, **env: str
    ) -> Iterator[tuple[RunningService, Path]]:
        tool_file = project / "src" / "truthful" / "tools" / "lookup.py"
        generated = tool_file.read_text()
        if tool is not None:
            tool_file.write_text(tool)
        log = tmp_path / "service.log"
        settings = {"LM_NUM_RETRIES": "0", **env}
        try:
            with served(
                project, "truthful", fake_lm, log, scenario=scenario, env=settings
            ) as service:
                yield service, log
        finally:
            tool_file.write_text(generated)

    return start


async def _events(url: str, path: str) -> tuple[int, list[tuple[str, dict[str, Any]]]]:
    async with (
        httpx.AsyncClient(base_url=url, timeout=30) as client,
        aconnect_sse(client, "POST", path, json=QUESTION) as source,
    ):
        if source.response.status_code != 200:
            await source.response.aread()
            return source.response.status_code, []
        return 200, [(sse.event, json.loads(sse.data)) async for sse in source.aiter_sse()]


def events(service: RunningService, path: str) -> list[tuple[str, dict[str, Any]]]:
    status, found = asyncio.run(_events(service.url, path))
    assert status == 200
    return found


def statuses(found: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str]]:
    return [(data["hook"], data["message"]) for name, data in found if name == "status"]


def test_the_lm_is_told_each_tool_argument_of_the_spec(
    serve: Callable[..., Any], fake_lm: FakeLM
) -> None:
    with serve() as (service, _):
        fake_lm.reset()
        assert httpx.post(f"{service.url}/v1/agent", json=QUESTION, timeout=30).is_success
        prompt = fake_lm.prompts()[0]
    assert "lookup, whose description is <desc>Look up an order.</desc>" in prompt
    assert "'order_id': {'type': 'string', 'description': \"The order's id, e.g. A-1001.\"}" in (
        prompt
    )
    described = "'description': \"Whether to list the order's items.\""
    assert "'include_items': {'type': 'boolean', " + described + "}" in prompt


def test_the_start_up_error_of_a_stale_tool_says_what_to_add(
    project: Path, fake_lm: FakeLM, tmp_path: Path
) -> None:
    tool_file = project / "src" / "truthful" / "tools" / "lookup.py"
    generated = tool_file.read_text()
    tool_file.write_text(STALE_TOOL)
    log = tmp_path / "stale.log"
    try:
        with (
            pytest.raises(RuntimeError, match="exited"),
            log.open("wb") as sink,
            running_service(project, "truthful", fake_lm_env(fake_lm.api_base), log=sink),
        ):
            pass
    finally:
        tool_file.write_text(generated)
    assert "has no parameter include_items, which the spec gives the tool" in log.read_text()


def test_module_hooks_fire_for_the_programs_own_module_only(serve: Callable[..., Any]) -> None:
    with serve() as (service, _):
        said = statuses(events(service, "/v1/think/stream"))
    modules = [message for hook, message in said if hook.startswith("module_")]
    assert modules == ["Starting ChainOfThought", "Done with ChainOfThought"]


def test_status_modules_all_reports_the_modules_a_program_is_built_of(
    serve: Callable[..., Any],
) -> None:
    with serve() as (service, _):
        said = statuses(events(service, "/v1/think_aloud/stream"))
    assert [message for hook, message in said] == ["Starting ChainOfThought", "Starting Predict"]


def test_a_failed_lm_call_ends_with_lm_error_not_lm_end(serve: Callable[..., Any]) -> None:
    with serve("http-401") as (service, _):
        found = events(service, "/v1/think/stream")
    said = statuses(found)
    assert ("lm_error", "openai/fake-model failed: upstream_auth") in said
    assert not [hook for hook, _ in said if hook == "lm_end"]
    assert found[-1][0] == "error"
    assert found[-1][1]["code"] == "upstream_auth"


def test_a_tool_that_raises_reports_tool_error_and_logs_the_traceback(
    serve: Callable[..., Any],
) -> None:
    # The generated stub raises NotImplementedError, as the demo's did.
    with serve(tool=None) as (service, log):
        said = statuses(events(service, "/v1/agent/stream"))
    assert ("tool_error", "lookup failed: NotImplementedError") in said
    assert not [hook for hook, _ in said if hook == "tool_end"]
    text = log.read_text()
    assert "agent: tool lookup failed" in text
    assert "Traceback" in text and "NotImplementedError" in text


def test_every_lm_call_gets_its_start_and_end_listened_or_not(
    serve: Callable[..., Any], fake_lm: FakeLM
) -> None:
    scenario = "steps-2"
    with serve(scenario) as (service, _):
        fake_lm.reset()
        said = statuses(events(service, "/v1/agent/stream"))
        calls = fake_lm.stats()["scenarios"][scenario]["requests"]
    # Two tool steps, finish, then the extraction, which no listener watches.
    assert calls == 4
    assert [hook for hook, _ in said].count("lm_start") == calls
    assert [hook for hook, _ in said].count("lm_end") == calls
