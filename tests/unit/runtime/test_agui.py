"""protocols/agui.py: a run's events as AG-UI events, checked by ag-ui-protocol's own models."""

from __future__ import annotations

import json
from typing import Any

import dspy
from ag_ui.core import EventType, RunFinishedEvent
from forge_service.runtime.events import (
    DoneEvent,
    ErrorEvent,
    Event,
    PredictionEvent,
    StatusEvent,
    TokenEvent,
)
from forge_service.runtime.program import ServedProgram
from forge_service.runtime.protocols.agui import AGUIStream
from forge_service.runtime.protocols.base import ChatProgram

from .helpers import Answer, Ask, ScriptedReader, sse_events

IDS = {"run_id": "r", "request_id": "q"}


def token(predictor: str, field: str, chunk: str) -> TokenEvent:
    return TokenEvent(predictor=predictor, field=field, chunk=chunk, **IDS)


def status(hook: str, call_id: str, message: str = "m", **values: Any) -> StatusEvent:
    return StatusEvent(message=message, hook=hook, call_id=call_id, **values, **IDS)


async def agui_events(*events: Event | None) -> list[dict[str, Any]]:
    """The AG-UI events a run of ``events`` makes, decoded from their frames."""
    program = ChatProgram(
        ServedProgram("agent", dspy.Predict("question -> answer")),
        Ask,
        Answer,
        message="question",
        history=None,
        content="answer",
        reasoning="reasoning",
    )
    stream = AGUIStream(program, ScriptedReader(*events), thread_id="t", run_id="run")  # type: ignore[arg-type]
    decoded = []
    for fields in sse_events([chunk async for chunk in stream.frames()]):
        if "data" in fields:
            decoded.append(json.loads(fields["data"]))
        else:
            assert "comment" in fields  # a keep-alive comment
    return decoded


async def test_a_react_run_is_turns_tool_calls_steps_and_one_answer() -> None:
    events = await agui_events(
        status("module_start", "m1", "Started"),
        token("react", "next_thought", "Look"),
        token("react", "next_thought", " it up"),
        status("tool_start", "t1", tool="search", args='{"query": "x"}'),
        status("tool_end", "t1", tool="search", output="found"),
        token("react", "next_thought", "Again"),
        status("tool_start", "t2", tool="search", args='{"query": "y"}'),
        status("tool_error", "t2", "search failed: ValueError", tool="search"),
        None,
        token("extract.predict", "answer", "Par"),
        status("module_end", "m1", "Ended"),
        PredictionEvent(outputs={"answer": "Paris"}, **IDS),
        DoneEvent(**IDS),
    )
    kinds = [event["type"] for event in events]
    assert kinds[0] == EventType.RUN_STARTED and kinds[-2:] == ["STATE_SNAPSHOT", "RUN_FINISHED"]
    starts = [event for event in events if event["type"] == "TEXT_MESSAGE_START"]
    # One message per field and predictor turn: two thoughts, then the answer.
    assert [start["metadata"] for start in starts] == [
        {"field": "next_thought", "predictor": "react"},
        {"field": "next_thought", "predictor": "react"},
        {"field": "answer", "predictor": "extract.predict"},
    ]
    answer_id = starts[-1]["messageId"]
    deltas = [e["delta"] for e in events if e.get("messageId") == answer_id and "delta" in e]
    assert "".join(deltas) == "Paris"  # the prediction completes the streamed answer
    results = {e["toolCallId"]: e["content"] for e in events if e["type"] == "TOOL_CALL_RESULT"}
    assert results == {"t1": "found", "t2": "search failed: ValueError"}
    args = [e["delta"] for e in events if e["type"] == "TOOL_CALL_ARGS"]
    assert args == ['{"query": "x"}', '{"query": "y"}']
    steps = [(e["type"], e["stepName"]) for e in events if e["type"].startswith("STEP_")]
    assert steps == [("STEP_STARTED", "Started"), ("STEP_FINISHED", "Started")]
    assert kinds.count("CUSTOM") == 6  # every status event, as `status`
    # No two messages are open at once, and none across a tool call or a step start.
    open_message = None
    for event in events:
        if event["type"] == "TEXT_MESSAGE_START":
            assert open_message is None
            open_message = event["messageId"]
        elif event["type"] == "TEXT_MESSAGE_END":
            open_message = None
        elif event["type"] in ("TOOL_CALL_START", "STEP_STARTED"):
            assert open_message is None, event
    assert events[-1]["result"] == {"answer": "Paris"}


async def test_reasoning_is_a_reasoning_message() -> None:
    events = await agui_events(
        token("p", "reasoning", "Hm"),
        token("p", "answer", "Paris"),
        PredictionEvent(outputs={"reasoning": "Hm", "answer": "Paris"}, **IDS),
        DoneEvent(**IDS),
    )
    assert [event["type"] for event in events][1:6] == [
        "REASONING_START",
        "REASONING_MESSAGE_START",
        "REASONING_MESSAGE_CONTENT",
        "REASONING_MESSAGE_END",
        "REASONING_END",
    ]


async def test_a_failed_run_is_run_error_and_a_cancelled_one_finishes_cancelled() -> None:
    (*_, failed) = await agui_events(
        token("p", "answer", "Par"), ErrorEvent(code="timeout", message="Too slow.", **IDS)
    )
    assert failed == {"type": "RUN_ERROR", "message": "Too slow.", "code": "timeout"}
    (*_, cancelled) = await agui_events(
        ErrorEvent(code="cancelled", message="The run was cancelled.", **IDS)
    )
    finished = RunFinishedEvent.model_validate(cancelled)
    assert finished.outcome is not None and finished.outcome.type == "cancelled"
