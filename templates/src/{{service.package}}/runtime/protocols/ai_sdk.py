"""The Vercel AI SDK UI message stream at ``POST /ai-sdk/{program}``, for ``useChat``.

The request is ``useChat``'s body, ``{id, messages, trigger}`` (UIMessages made
of parts; their text parts count), plus ``inputs`` for the program's other
fields (``useChat``'s ``body`` option), mapped onto the program as the OpenAI
endpoint does (``base.chat_request``). The answer is ``text/event-stream`` with
``x-vercel-ai-ui-message-stream: v1``, one JSON part per ``data:`` frame, then
``data: [DONE]``. Mapping of the run's events (docs/protocol.md has the table):

- the stream opens with ``start`` and ``start-step`` and ends with
  ``finish-step``, ``finish``, ``[DONE]``;
- the content field's tokens are ``text-start``/``text-delta``/``text-end``
  (they add up to the final field), the reasoning field's ``reasoning-*``;
- a tool's status events are ``tool-input-start`` and ``tool-input-available``
  (its arguments), then ``tool-output-available`` (the start of its output)
  or ``tool-output-error``, paired by the status's ``call_id``; every status
  event is also a ``data-status`` part (its ``message``, ``hook``, ``tool``);
- the prediction is a ``data-prediction`` part: every output, as
  ``POST /v1/<program>`` returns them;
- an error before the first event is an HTTP error with the service's body;
  after it, an ``error`` part (``errorText``: our message) then
  ``finish`` (``finishReason: "error"``) and ``[DONE]``;
- a client that disconnects (``stop()``) stops the run at once: this endpoint
  has no resume.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from ..errors import Failure, RunFailed
from ..events import ErrorEvent, PredictionEvent, StatusEvent
from ..http import ERROR_RESPONSES, error_response
from ..reading import RUN_ID_HEADER, ReaderResponse
from .base import (
    ChatDep,
    ChatEventStream,
    ChatInputError,
    Protocol,
    RunsDep,
    TextPart,
    Turn,
    chat_request,
    data_frame,
    text_of,
)

PREFIX = "/ai-sdk"
HEADER = {"x-vercel-ai-ui-message-stream": "v1"}
STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The AI SDK's UI message stream (x-vercel-ai-ui-message-stream: v1).",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


class UIMessage(BaseModel):
    """A message of ``useChat``'s conversation."""

    model_config = ConfigDict(extra="allow")
    id: str = ""
    role: Literal["system", "user", "assistant"]
    parts: list[TextPart] = Field(default_factory=list)

    def turn(self) -> Turn:
        text = text_of(self.parts)
        return Turn(self.role, text)


class UIChatRequest(BaseModel):
    """The body ``useChat`` (``DefaultChatTransport``) sends."""

    model_config = ConfigDict(extra="allow")
    id: str | None = Field(None, description="The chat's id.")
    messages: list[UIMessage] = Field(min_length=1)
    trigger: str | None = Field(None, description="submit-message or regenerate-message.")
    inputs: dict[str, Any] = Field(
        default_factory=dict,
        description="The program's inputs other than the message (useChat's `body` option).",
    )


router = APIRouter(prefix=PREFIX, tags=["ai-sdk"], responses=ERROR_RESPONSES)


@router.post(
    "/{program}",
    summary="Run a program as an AI SDK chat (useChat)",
    responses=STREAM_RESPONSE,
    response_class=Response,
)
async def stream_ui_messages(
    program: str, body: UIChatRequest, chat: ChatDep, runs: RunsDep
) -> Response:
    served = chat.get(program)
    if served is None:
        return error_response(Failure(404, "not_found", f"No program named {program!r}."))
    try:
        inputs = chat_request(served, [message.turn() for message in body.messages], body.inputs)
        reader = await runs.open(served.program, inputs, served.to_response, cancel_on_close=True)
    except ChatInputError as exc:
        return error_response(Failure(400, "invalid_messages", exc.message))
    except RunFailed as exc:
        response = error_response(exc.failure)
        if exc.run_id is not None:
            response.headers[RUN_ID_HEADER] = exc.run_id
        return response
    stream = UIMessageStream(served, reader)
    return ReaderResponse(stream.frames(), reader, HEADER)


@dataclass
class UIMessageStream(ChatEventStream):
    """A run as UI message stream parts."""

    text_id: str | None = None  # the open text part's id, if one is open
    reasoning_id: str | None = None
    parts: int = 0  # text and reasoning parts opened so far, for their ids

    def _new_id(self, kind: str) -> str:
        self.parts += 1
        return f"{kind}-{self.parts}"

    def on_start(self) -> Iterable[bytes]:
        return [part("start", messageId=f"msg-{self.reader.run_id}"), part("start-step")]

    def _close_text(self) -> list[bytes]:
        frames = []
        if self.text_id is not None:
            frames.append(part("text-end", id=self.text_id))
            self.text_id = None
        if self.reasoning_id is not None:
            frames.append(part("reasoning-end", id=self.reasoning_id))
            self.reasoning_id = None
        return frames

    def on_text(self, delta: str) -> Iterable[bytes]:
        frames = []
        if self.text_id is None:
            frames = self._close_text()
            self.text_id = self._new_id("text")
            frames.append(part("text-start", id=self.text_id))
        frames.append(part("text-delta", id=self.text_id, delta=delta))
        return frames

    def on_reasoning(self, delta: str) -> Iterable[bytes]:
        frames = []
        if self.reasoning_id is None:
            frames = self._close_text()
            self.reasoning_id = self._new_id("reasoning")
            frames.append(part("reasoning-start", id=self.reasoning_id))
        frames.append(part("reasoning-delta", id=self.reasoning_id, delta=delta))
        return frames

    def on_status(self, event: StatusEvent) -> Iterable[bytes]:
        frames = []
        call, tool = event.call_id, event.tool or ""
        if event.hook == "tool_start":
            frames = self._close_text()
            frames.append(part("tool-input-start", toolCallId=call, toolName=tool))
            frames.append(
                part("tool-input-available", toolCallId=call, toolName=tool, input=_args(event))
            )
        elif event.hook == "tool_end":
            frames.append(part("tool-output-available", toolCallId=call, output=event.output))
        elif event.hook == "tool_error":
            frames.append(part("tool-output-error", toolCallId=call, errorText=event.message))
        status = {"message": event.message, "hook": event.hook, "tool": event.tool, "call_id": call}
        frames.append(part("data-status", data=status))
        return frames

    def on_prediction(self, event: PredictionEvent) -> Iterable[bytes]:
        return [*self._close_text(), part("data-prediction", data=event.outputs)]

    def on_done(self) -> Iterable[bytes]:
        closing = [part("finish-step"), part("finish", finishReason="stop")]
        return [*self._close_text(), *closing, data_frame("[DONE]")]

    def on_error(self, event: ErrorEvent) -> Iterable[bytes]:
        failed = [part("error", errorText=event.message), part("finish", finishReason="error")]
        return [*self._close_text(), *failed, data_frame("[DONE]")]


def part(kind: str, **fields: Any) -> bytes:
    """One UI message stream part as its ``data:`` frame."""
    return data_frame({"type": kind, **fields})


def _args(event: StatusEvent) -> Any:
    """A tool's arguments as the JSON object they were (``{}`` when unknown)."""
    try:
        return json.loads(event.args) if event.args else {}
    except ValueError:
        return {"args": event.args}


def _install(app: FastAPI) -> None:
    app.include_router(router)


AI_SDK = Protocol(
    name="ai_sdk",
    setting="protocol_ai_sdk",
    install=_install,
    url=lambda program: f"{PREFIX}/{program}",
)
