"""AG-UI at ``/agui/<program>`` through ``@ag-ui/client``'s ``HttpAgent``, in Node.

``tests/system/js/agui_agent.mjs`` runs the agent once against a served
project (``chat_service``) on the fake LM; these tests read what the client
made of the events (it verifies their order and fails a run that breaks the
protocol): the assistant message equals the final field, reasoning is a
reasoning message, a ReAct tool call is a tool call with its result, status is
``CUSTOM`` events, the prediction is the state and the run's result, errors are
``RUN_ERROR`` or a refused request, the API key is enforced, aborting stops the
upstream LM stream, and a run cancelled by ``DELETE /v1/runs/{id}`` ends with
the ``cancelled`` outcome.
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
from ag_ui.core import RunFinishedEvent

from dspy_forge.dev.devserver import RunningService
from dspy_forge.dev.fakelm.testing import FakeLM

from .chat_service import KEY, project, serving
from .serving import debug_stats, wait_until
from .sse_clients import JS_DIR

__all__ = ["project"]

QUESTION = "What is the meaning of life?"


def user(text: str, index: int = 0) -> dict[str, Any]:
    return {"id": f"u{index}", "role": "user", "content": text}


def run_agent(
    service: RunningService,
    program: str,
    messages: list[dict[str, Any]] | None = None,
    *,
    inputs: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    abort_after: int = 0,
) -> dict[str, Any]:
    """What ``HttpAgent`` made of the run (see the script's header)."""
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "@ag-ui" / "client").is_dir():
        pytest.fail(f"needs node and `npm ci --prefix {JS_DIR}` (.ci/run does both)")
    request: dict[str, Any] = {"messages": messages or [user(QUESTION)]}
    if inputs is not None:
        request["forwardedProps"] = {"inputs": inputs}
    command = [
        node,
        str(JS_DIR / "agui_agent.mjs"),
        f"{service.url}/agui/{program}",
        json.dumps(request),
        json.dumps(headers or {}),
        str(abort_after),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def kinds(result: dict[str, Any]) -> list[str]:
    return [event["type"] for event in result["events"]]


def replies(result: dict[str, Any], role: str = "assistant") -> list[dict[str, Any]]:
    """The messages the run added, of one role."""
    return [message for message in result["messages"][1:] if message["role"] == role]


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
def test_the_assistant_message_equals_the_final_field(
    service: RunningService, program: str
) -> None:
    result = run_agent(service, program, inputs={"tone": "dry"} if program == "quiet" else None)
    assert result["failed"] is None
    outputs = result["result"]
    assert result["state"] == outputs  # STATE_SNAPSHOT and RUN_FINISHED.result agree
    (reply,) = replies(result)
    assert reply["content"] == outputs["answer"]
    assert reply["metadata"]["field"] == "answer"
    assert kinds(result)[0] == "RUN_STARTED" and kinds(result)[-2:] == [
        "STATE_SNAPSHOT",
        "RUN_FINISHED",
    ]
    if program == "thinker":
        (reasoning,) = replies(result, "reasoning")
        assert reasoning["content"] == outputs["reasoning"]
        assert "REASONING_MESSAGE_CONTENT" in kinds(result)
    if program == "quiet":  # nothing streamed: the field arrives whole, in one delta
        assert kinds(result).count("TEXT_MESSAGE_CONTENT") == 1


def test_a_tool_call_is_a_tool_call_and_status_is_custom(service: RunningService) -> None:
    result = run_agent(service, "agent")
    assert result["failed"] is None
    calls = [call for message in replies(result) for call in message.get("toolCalls", [])]
    assert calls and all(call["function"]["name"] == "search" for call in calls)
    outputs = {message["toolCallId"]: message["content"] for message in replies(result, "tool")}
    for call in calls:
        query = json.loads(call["function"]["arguments"])["query"]
        assert outputs[call["id"]] == f"results for {query}"
    order = [kind for kind in kinds(result) if kind.startswith("TOOL_CALL")]
    assert order == [
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "TOOL_CALL_RESULT",
    ] * len(calls)
    statuses = [event["value"] for event in result["events"] if event["type"] == "CUSTOM"]
    assert {event["name"] for event in result["events"] if event["type"] == "CUSTOM"} == {"status"}
    assert {"Thinking", "Using search", "search answered"} <= {s["message"] for s in statuses}
    (text,) = [message for message in replies(result) if message.get("content")]
    assert text["content"] == result["result"]["answer"]


def test_earlier_messages_fill_the_history(service: RunningService, fake_lm: FakeLM) -> None:
    conversation = [
        user("Who wrote Hamlet?"),
        {"id": "a1", "role": "assistant", "content": "Shakespeare."},
        user("When was he born?", 2),
    ]
    fake_lm.reset()
    result = run_agent(service, "convo", conversation)
    assert result["messages"][-1]["content"] == result["result"]["answer"]
    (prompt,) = fake_lm.prompts()
    assert "Who wrote Hamlet?" in prompt and "Shakespeare." in prompt


def test_errors_are_refused_requests_or_run_errors(
    service: RunningService, start: Callable[..., Any]
) -> None:
    refused = run_agent(service, "quiet")  # no tone: the request does not validate
    assert "HTTP 400" in refused["failed"] and "tone" in refused["failed"]
    assert "No program" in run_agent(service, "nope")["failed"]
    with start("words-100+break-after-40") as broken:
        result = run_agent(broken, "qa")
    (error,) = [event for event in result["events"] if event["type"] == "RUN_ERROR"]
    assert error["code"] == "upstream_unavailable"
    assert error["message"] == "The language model could not be reached."
    # The client accepts the run as ended (runAgent resolves), RUN_ERROR last.
    assert result["failed"] is None and kinds(result)[-1] == "RUN_ERROR"


def test_a_cancelled_run_finishes_with_the_cancelled_outcome(
    start: Callable[..., Any],
) -> None:
    body = {"threadId": "t", "runId": "r", "messages": [user(QUESTION)]}
    with (
        start("delay-50ms+words-200") as service,
        httpx.stream("POST", f"{service.url}/agui/qa", json=body, timeout=30) as response,
    ):
        frames = (line[6:] for line in response.iter_lines() if line.startswith("data: "))
        for frame in frames:
            if json.loads(frame)["type"] == "TEXT_MESSAGE_CONTENT":
                break
        run_id = response.headers["X-Run-ID"]
        assert httpx.delete(f"{service.url}/v1/runs/{run_id}").status_code == 200
        last = [json.loads(frame) for frame in frames][-1]
    finished = RunFinishedEvent.model_validate(last)  # the package's own model reads it
    assert finished.outcome is not None and finished.outcome.type == "cancelled"


def test_the_api_key_is_enforced(start: Callable[..., Any]) -> None:
    with start(API_KEYS=KEY) as service:
        refused = run_agent(service, "qa", headers={"Authorization": "Bearer wrong"})
        assert "HTTP 401" in refused["failed"] and "valid API key" in refused["failed"]
        result = run_agent(service, "qa", headers={"Authorization": f"Bearer {KEY}"})
        assert result["failed"] is None and replies(result)


def test_aborting_stops_the_upstream_lm_request(start: Callable[..., Any], fake_lm: FakeLM) -> None:
    with start("delay-100ms+words-200", RUN_GRACE="30") as service:
        before = fake_lm.stats()["streams_disconnected"]
        result = run_agent(service, "qa", abort_after=2)
        assert result["aborted"]
        assert wait_until(lambda: fake_lm.stats()["streams_disconnected"] == before + 1)
        assert wait_until(lambda: fake_lm.stats()["streams_open"] == 0)
        assert wait_until(lambda: debug_stats(service)["active_runs"] == 0)


def test_the_environment_turns_the_protocol_off(start: Callable[..., Any]) -> None:
    with start(PROTOCOL_AGUI="false") as service:
        body = {"threadId": "t", "runId": "r", "messages": [user(QUESTION)]}
        assert httpx.post(f"{service.url}/agui/qa", json=body).status_code == 404
        assert "HTTP 404" in run_agent(service, "qa")["failed"]
