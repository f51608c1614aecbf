"""The AI SDK's UI message stream through the ``ai`` package's own client, in Node.

``tests/system/js/ai_sdk_chat.mjs`` sends a conversation to
``POST /ai-sdk/<program>`` with ``DefaultChatTransport`` (what ``useChat``
uses) and builds the reply with ``readUIMessageStream``; these tests read what
it made of the stream: the text part equals the final field, reasoning is a
reasoning part, a tool call is a tool part with its input and output, status
and the prediction are data parts, errors are ``error`` parts or a refused
request, the API key is enforced, and aborting stops the upstream LM request.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dspy_forge.dev.devserver import RunningService
from dspy_forge.dev.fakelm.testing import FakeLM

from .chat_service import KEY, project, serving
from .serving import debug_stats, wait_until
from .sse_clients import JS_DIR

__all__ = ["project"]

QUESTION = "What is the meaning of life?"


def user(text: str, index: int = 0) -> dict[str, Any]:
    return {"id": f"m{index}", "role": "user", "parts": [{"type": "text", "text": text}]}


def ai_sdk_chat(
    service: RunningService,
    program: str,
    messages: list[dict[str, Any]] | None = None,
    *,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    abort_after: int = 0,
) -> dict[str, Any]:
    """What the ``ai`` package's client made of the answer (see the script's header)."""
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "ai").is_dir():
        pytest.fail(f"needs node and `npm ci --prefix {JS_DIR}` (.ci/run does both)")
    request = {"messages": messages or [user(QUESTION)], "body": body or {}}
    command = [
        node,
        str(JS_DIR / "ai_sdk_chat.mjs"),
        f"{service.url}/ai-sdk/{program}",
        json.dumps(request),
        json.dumps(headers or {}),
        str(abort_after),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def parts(result: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The reply message's parts of one type."""
    return [part for part in result["message"]["parts"] if part["type"] == kind]


def prediction(result: dict[str, Any]) -> dict[str, Any]:
    (part,) = parts(result, "data-prediction")
    outputs: dict[str, Any] = part["data"]
    return outputs


@pytest.fixture(scope="module")
def service(
    project: Path, fake_lm: FakeLM, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    with serving(project, fake_lm, tmp_path_factory.mktemp("logs"))() as running:
        yield running


@pytest.fixture
def start(project: Path, fake_lm: FakeLM, tmp_path: Path) -> Callable[..., Any]:
    return serving(project, fake_lm, tmp_path)


@pytest.mark.parametrize("program", ["qa", "thinker", "quiet"])
def test_the_text_part_equals_the_final_field(service: RunningService, program: str) -> None:
    body = {"inputs": {"tone": "dry"}} if program == "quiet" else None
    result = ai_sdk_chat(service, program, body=body)
    assert result["errors"] == []
    (text,) = parts(result, "text")
    assert text["text"] == prediction(result)["answer"] and text["state"] == "done"
    kinds = [chunk["type"] for chunk in result["chunks"]]
    assert kinds[:2] == ["start", "start-step"] and kinds[-2:] == ["finish-step", "finish"]
    if program == "thinker":
        (reasoning,) = parts(result, "reasoning")
        assert reasoning["text"] == prediction(result)["reasoning"]


def test_a_tool_call_is_a_tool_part_and_status_is_data(service: RunningService) -> None:
    result = ai_sdk_chat(service, "agent")
    assert result["errors"] == []
    tools = parts(result, "tool-search")
    assert tools, result["message"]["parts"]
    for tool in tools:
        assert tool["state"] == "output-available"
        assert set(tool["input"]) == {"query"}
        assert tool["output"] == f"results for {tool['input']['query']}"
    statuses = [part["data"] for part in parts(result, "data-status")]
    assert [s["hook"] for s in statuses if s["hook"].startswith("tool")] == [
        "tool_start",
        "tool_end",
    ] * len(tools)
    assert {"Thinking", "Using search", "search answered"} <= {s["message"] for s in statuses}
    (text,) = parts(result, "text")
    assert text["text"] == prediction(result)["answer"]


def test_earlier_messages_fill_the_history(service: RunningService, fake_lm: FakeLM) -> None:
    conversation = [
        user("Who wrote Hamlet?"),
        {"id": "a1", "role": "assistant", "parts": [{"type": "text", "text": "Shakespeare."}]},
        user("When was he born?", 2),
    ]
    fake_lm.reset()
    result = ai_sdk_chat(service, "convo", conversation)
    (text,) = parts(result, "text")
    assert text["text"] == prediction(result)["answer"]
    (prompt,) = fake_lm.prompts()
    assert "Who wrote Hamlet?" in prompt and "Shakespeare." in prompt


def test_errors_are_refused_requests_or_error_parts(
    service: RunningService, start: Callable[..., Any]
) -> None:
    refused = ai_sdk_chat(service, "quiet")  # no tone: the request does not validate
    assert "tone" in refused["failed"]
    assert "No program" in ai_sdk_chat(service, "nope")["failed"]
    with start("words-100+break-after-40") as broken:
        result = ai_sdk_chat(broken, "qa")
    assert result["errors"] == ["The language model could not be reached."]
    kinds = [chunk["type"] for chunk in result["chunks"]]
    assert kinds[-2:] == ["error", "finish"] and result["chunks"][-1]["finishReason"] == "error"


def test_the_api_key_is_enforced(start: Callable[..., Any]) -> None:
    with start(API_KEYS=KEY) as service:
        assert "valid API key" in ai_sdk_chat(service, "qa")["failed"]
        result = ai_sdk_chat(service, "qa", headers={"Authorization": f"Bearer {KEY}"})
        assert parts(result, "text")


def test_aborting_stops_the_upstream_lm_request(start: Callable[..., Any], fake_lm: FakeLM) -> None:
    with start("delay-100ms+words-200", RUN_GRACE="30") as service:
        before = fake_lm.stats()["streams_disconnected"]
        result = ai_sdk_chat(service, "qa", abort_after=2)
        assert result["aborted"]
        assert wait_until(lambda: fake_lm.stats()["streams_disconnected"] == before + 1)
        assert wait_until(lambda: fake_lm.stats()["streams_open"] == 0)
        assert wait_until(lambda: debug_stats(service)["active_runs"] == 0)


def test_the_environment_turns_the_protocol_off(start: Callable[..., Any]) -> None:
    with start(PROTOCOL_AI_SDK="false") as service:
        response = httpx.post(f"{service.url}/ai-sdk/qa", json={"messages": [user(QUESTION)]})
        assert response.status_code == 404
        assert ai_sdk_chat(service, "qa")["failed"]
