"""protocols/base.py: a conversation as a program's inputs, and a run's events as a reply."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import dspy
import pytest
from forge_service.runtime.events import (
    DoneEvent,
    PredictionEvent,
    StatusEvent,
    TokenEvent,
)
from forge_service.runtime.inputs import Inputs
from forge_service.runtime.program import ServedProgram
from forge_service.runtime.protocols.base import (
    ChatEventStream,
    ChatInputError,
    ChatProgram,
    Turn,
    chat_request,
)
from pydantic import Field

from .helpers import Answer, ScriptedReader


class Asked(Inputs):
    question: str
    history: dspy.History = Field(strict=False)


def chat(**changes: Any) -> ChatProgram:
    values: dict[str, Any] = {
        "program": ServedProgram("asker", dspy.Predict("question -> answer")),
        "request": Asked,
        "response": Answer,
        "message": "question",
        "history": "history",
        "content": "answer",
    }
    return ChatProgram(**{**values, **changes})


def test_the_last_user_message_is_the_input_and_earlier_turns_the_history() -> None:
    turns = [
        Turn("system", "Be brief."),
        Turn("user", "Who wrote Hamlet?"),
        Turn("assistant", "Shakespeare."),
        Turn("user", "When?"),
    ]
    body = chat_request(chat(), turns, {})
    assert body.question == "When?"
    assert body.history.messages == [{"question": "Who wrote Hamlet?", "answer": "Shakespeare."}]


def test_a_conversation_without_a_user_message_or_valid_inputs_is_located() -> None:
    with pytest.raises(ChatInputError) as caught:
        chat_request(chat(), [Turn("system", "Hi")], {})
    assert caught.value.param == "messages"
    with pytest.raises(ChatInputError) as caught:
        chat_request(chat(), [Turn("user", "Hi")], {"extra": 1})
    assert caught.value.param == "inputs.extra"


def test_without_a_message_input_the_message_is_a_json_object_of_inputs() -> None:
    json_chat = chat(message=None, history=None)
    body = chat_request(
        json_chat, [Turn("user", '{"question": "Q", "history": {"messages": []}}')], {}
    )
    assert body.question == "Q"
    with pytest.raises(ChatInputError):
        chat_request(json_chat, [Turn("user", "plain text")], {})


@dataclass
class Recorder(ChatEventStream):
    """Names every hook that fired, with its argument."""

    seen: list[tuple[str, Any]] = field(default_factory=list)

    def on_text(self, delta: str) -> Iterable[bytes]:
        self.seen.append(("text", delta))
        return [delta.encode()]

    def on_reasoning(self, delta: str) -> Iterable[bytes]:
        self.seen.append(("reasoning", delta))
        return []

    def on_status(self, event: StatusEvent) -> Iterable[bytes]:
        self.seen.append(("status", event.hook))
        return []

    def on_done(self) -> Iterable[bytes]:
        self.seen.append(("done", None))
        return []


async def test_the_prediction_completes_the_streamed_text_to_the_final_field() -> None:
    reader = ScriptedReader(
        StatusEvent(message="m", hook="lm_start", call_id="c", run_id="r", request_id="q"),
        TokenEvent(predictor="p", field="reasoning", chunk="Hm", run_id="r", request_id="q"),
        TokenEvent(predictor="p", field="answer", chunk="Par", run_id="r", request_id="q"),
        TokenEvent(predictor="p", field="next_thought", chunk="x", run_id="r", request_id="q"),
        None,
        PredictionEvent(outputs={"answer": "Paris"}, run_id="r", request_id="q"),
        DoneEvent(run_id="r", request_id="q"),
    )
    stream = Recorder(chat(reasoning="reasoning"), reader)  # type: ignore[arg-type]
    frames = [frame async for frame in stream.frames()]
    assert stream.seen == [
        ("status", "lm_start"),
        ("reasoning", "Hm"),
        ("text", "Par"),
        ("text", "is"),
        ("done", None),
    ]
    assert frames == [b"Par", b": ping\n\n", b"is"]


@dataclass
class Opener(Recorder):
    """A protocol that opens its body with a frame of its own and closes it with another."""

    def on_start(self) -> Iterable[bytes]:
        return [b"<"]

    def on_done(self) -> Iterable[bytes]:
        return [b">"]


async def test_the_frames_of_one_batch_of_events_are_one_write() -> None:
    def token(chunk: str) -> TokenEvent:
        return TokenEvent(predictor="p", field="answer", chunk=chunk, run_id="r", request_id="q")

    reader = ScriptedReader(
        [token("P"), token("a")],
        StatusEvent(message="m", hook="lm_end", call_id="c", run_id="r", request_id="q"),
        [
            token("r"),
            token("is"),
            PredictionEvent(outputs={"answer": "Paris"}, run_id="r", request_id="q"),
            DoneEvent(run_id="r", request_id="q"),
        ],
    )
    stream = Opener(chat(), reader)  # type: ignore[arg-type]
    chunks = [chunk async for chunk in stream.frames()]
    # The opening goes with the first batch; a batch with no frames is no write.
    assert chunks == [b"<Pa", b"ris>"]
