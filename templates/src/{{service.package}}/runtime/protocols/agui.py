"""AG-UI at ``POST /agui/{program}``: every program is an agent (``@ag-ui/client`` ``HttpAgent``).

The request is AG-UI's ``RunAgentInput``. Its ``messages`` reach the program
as the chat protocols' do (``base.chat_request``: the last user message, the
earlier turns as its ``History`` input); ``forwardedProps.inputs``, a JSON
object, gives the program's other inputs (the ``inputs`` field of the other
chat protocols). ``state`` is not read: it is the client's copy of what this
agent sent last. The answer is ``text/event-stream``, one event per ``data:``
frame, from ``ag-ui-protocol``'s own types and ``EventEncoder``. Mapping of the
run's events (docs/protocol.md has the table):

- ``RUN_STARTED`` first (the input's ``threadId`` and ``runId``);
- each listened field's tokens, per predictor turn, are one text message
  (``TEXT_MESSAGE_START``/``CONTENT``/``END``, role ``assistant``; its
  ``metadata`` names the predictor and the field); the content field's
  message always adds up to the final field (a field nobody listened to
  arrives whole); the reasoning field's tokens are ``REASONING_*`` events;
- a tool's status events are ``TOOL_CALL_START``/``ARGS``/``END`` (its
  arguments) and ``TOOL_CALL_RESULT`` (the start of its output, or the error
  message of ``tool_error``), paired by the status's ``call_id``; a module's
  are ``STEP_STARTED``/``STEP_FINISHED`` (named by the start's message); every
  status event is also a ``CUSTOM`` event named ``status``;
- the prediction is a ``STATE_SNAPSHOT`` (every output, as ``POST /v1/<program>``
  returns them) and ``RUN_FINISHED``'s ``result``;
- an error before the first event is an HTTP error with the service's body;
  after it, ``RUN_ERROR`` (our ``message`` and ``code``); a run cancelled by
  ``DELETE /v1/runs/{id}`` ends with ``RUN_FINISHED`` and the ``cancelled``
  outcome;
- a client that disconnects (``abortRun()``) stops the run at once: there is no
  resume here.

Note 1. AG-UI lets events interleave with an open message, but a message is
closed when its turn is over: when another field or predictor streams, a tool
is called, a module starts, and at the prediction (which may first complete
the reply's text, so a module's end does not close it).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ag_ui.core import (
    BaseEvent,
    CustomEvent,
    ReasoningEndEvent,
    ReasoningMessageContentEvent,
    ReasoningMessageEndEvent,
    ReasoningMessageStartEvent,
    ReasoningStartEvent,
    RunAgentInput,
    RunErrorEvent,
    RunFinishedCancelledOutcome,
    RunFinishedEvent,
    RunStartedEvent,
    StateSnapshotEvent,
    StepFinishedEvent,
    StepStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)
from ag_ui.encoder import EventEncoder
from fastapi import APIRouter, FastAPI
from starlette.responses import Response

from ..errors import Failure, RunFailed
from ..events import ErrorEvent, Event, PredictionEvent, StatusEvent, TokenEvent
from ..http import ERROR_RESPONSES, error_response
from ..reading import RUN_ID_HEADER, ReaderResponse
from ..runlog import CANCELLED
from .base import (
    ChatDep,
    ChatEventStream,
    ChatInputError,
    Protocol,
    RunsDep,
    Turn,
    chat_request,
)

PREFIX = "/agui"
ENCODER = EventEncoder()
STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "AG-UI events, one JSON event per data: frame.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}
ROLES = {"system", "developer", "user", "assistant", "tool"}  # the turns a program can take


def turns(body: RunAgentInput) -> list[Turn]:
    """The conversation's text, message by message; activity and reasoning are not turns."""
    found: list[Turn] = []
    for message in body.messages:
        if message.role not in ROLES:
            continue
        content = getattr(message, "content", None)
        if isinstance(content, list):
            content = "".join(getattr(part, "text", "") for part in content)
        found.append(Turn(message.role, content or ""))
    return found


def forwarded_inputs(body: RunAgentInput) -> dict[str, Any]:
    """``forwardedProps.inputs``: the program's other inputs (``{}`` when absent)."""
    props = body.forwarded_props
    inputs = props.get("inputs") if isinstance(props, dict) else None
    if inputs is not None and not isinstance(inputs, dict):
        raise ChatInputError("forwardedProps.inputs must be a JSON object.", "forwardedProps")
    return inputs or {}


router = APIRouter(prefix=PREFIX, tags=["ag-ui"], responses=ERROR_RESPONSES)


@router.post(
    "/{program}",
    summary="Run a program as an AG-UI agent (HttpAgent)",
    responses=STREAM_RESPONSE,
    response_class=Response,
)
async def run_agent(program: str, body: RunAgentInput, chat: ChatDep, runs: RunsDep) -> Response:
    served = chat.get(program)
    if served is None:
        return error_response(Failure(404, "not_found", f"No program named {program!r}."))
    try:
        inputs = chat_request(served, turns(body), forwarded_inputs(body))
        reader = await runs.open(served.program, inputs, served.to_response, cancel_on_close=True)
    except ChatInputError as exc:
        return error_response(Failure(400, "invalid_messages", exc.message))
    except RunFailed as exc:
        response = error_response(exc.failure)
        if exc.run_id is not None:
            response.headers[RUN_ID_HEADER] = exc.run_id
        return response
    stream = AGUIStream(served, reader, thread_id=body.thread_id, run_id=body.run_id)
    return ReaderResponse(stream.frames(), reader)


@dataclass
class AGUIStream(ChatEventStream):
    """A run as AG-UI events."""

    thread_id: str = ""
    run_id: str = ""
    predictor: str = ""  # the predictor of the last token
    message: tuple[str, str] | None = None  # the open text message's (predictor, field)
    message_id: str = ""
    reasoning_id: str | None = None  # the open reasoning message's id
    opened: int = 0  # messages opened so far, for their ids
    steps: dict[str, str] = field(default_factory=dict)  # a module's call_id -> its step's name

    def _new_id(self, kind: str) -> str:
        self.opened += 1
        return f"{kind}-{self.reader.run_id}-{self.opened}"

    def on_start(self) -> Iterable[bytes]:
        return [frame(RunStartedEvent(thread_id=self.thread_id, run_id=self.run_id))]

    def _close(self) -> list[bytes]:
        """End the open text and reasoning messages: a turn is over (note 1)."""
        frames = []
        if self.message is not None:
            frames.append(frame(TextMessageEndEvent(message_id=self.message_id)))
            self.message = None
        if self.reasoning_id is not None:
            frames.append(frame(ReasoningMessageEndEvent(message_id=self.reasoning_id)))
            frames.append(frame(ReasoningEndEvent(message_id=self.reasoning_id)))
            self.reasoning_id = None
        return frames

    def _text(self, predictor: str, name: str, delta: str) -> list[bytes]:
        frames = []
        if self.message != (predictor, name):
            frames = self._close()
            self.message, self.message_id = (predictor, name), self._new_id("msg")
            # Which field of which predictor this message streams (none: the field arrived whole).
            where = {"field": name, **({"predictor": predictor} if predictor else {})}
            start = TextMessageStartEvent(
                message_id=self.message_id, role="assistant", metadata=where
            )
            frames.append(frame(start))
        if delta:  # AG-UI refuses an empty delta
            frames.append(frame(TextMessageContentEvent(message_id=self.message_id, delta=delta)))
        return frames

    def on_event(self, event: Event | None) -> Iterable[bytes]:
        if isinstance(event, TokenEvent):
            self.predictor = event.predictor  # on_text and on_reasoning get only the chunk
        return super().on_event(event)

    def on_text(self, delta: str) -> Iterable[bytes]:
        return self._text(self.predictor, self.chat.content or "", delta)

    def on_token(self, event: TokenEvent) -> Iterable[bytes]:
        return self._text(event.predictor, event.field, event.chunk)

    def on_reasoning(self, delta: str) -> Iterable[bytes]:
        frames = []
        if self.reasoning_id is None:
            frames = self._close()
            self.reasoning_id = self._new_id("reasoning")
            frames.append(frame(ReasoningStartEvent(message_id=self.reasoning_id)))
            start = ReasoningMessageStartEvent(message_id=self.reasoning_id, role="reasoning")
            frames.append(frame(start))
        if delta:
            content = ReasoningMessageContentEvent(message_id=self.reasoning_id, delta=delta)
            frames.append(frame(content))
        return frames

    def on_status(self, event: StatusEvent) -> Iterable[bytes]:
        frames: list[bytes] = []
        call, hook = event.call_id, event.hook
        if hook == "tool_start":
            frames = self._close()
            name = event.tool or ""
            frames.append(frame(ToolCallStartEvent(tool_call_id=call, tool_call_name=name)))
            frames.append(frame(ToolCallArgsEvent(tool_call_id=call, delta=event.args or "{}")))
            frames.append(frame(ToolCallEndEvent(tool_call_id=call)))
        elif hook in ("tool_end", "tool_error"):
            output = event.output if hook == "tool_end" else event.message
            result = ToolCallResultEvent(
                message_id=f"result-{call}", tool_call_id=call, content=output or "", role="tool"
            )
            frames.append(frame(result))
        elif hook == "module_start":
            frames = self._close()
            self.steps[call] = event.message
            frames.append(frame(StepStartedEvent(step_name=event.message)))
        elif hook == "module_end" and call in self.steps:
            # Not closing the reply: the prediction may still complete its text (note 1).
            frames.append(frame(StepFinishedEvent(step_name=self.steps.pop(call))))
        status = {"message": event.message, "hook": hook, "tool": event.tool, "call_id": call}
        frames.append(frame(CustomEvent(name="status", value=status)))
        return frames

    def on_prediction(self, event: PredictionEvent) -> Iterable[bytes]:
        return [*self._close(), frame(StateSnapshotEvent(snapshot=event.outputs))]

    def on_done(self) -> Iterable[bytes]:
        finished = RunFinishedEvent(
            thread_id=self.thread_id, run_id=self.run_id, result=self.outputs
        )
        return [*self._close(), frame(finished)]

    def on_error(self, event: ErrorEvent) -> Iterable[bytes]:
        if event.code == CANCELLED.code:
            outcome = RunFinishedCancelledOutcome()
            ended: BaseEvent = RunFinishedEvent(
                thread_id=self.thread_id, run_id=self.run_id, outcome=outcome
            )
        else:
            ended = RunErrorEvent(message=event.message, code=event.code)
        return [*self._close(), frame(ended)]


def frame(event: BaseEvent) -> bytes:
    """One AG-UI event as its ``data:`` frame, by the package's own encoder."""
    return ENCODER.encode(event).encode()


def _install(app: FastAPI) -> None:
    app.include_router(router)


AGUI = Protocol(
    name="agui",
    setting="protocol_agui",
    install=_install,
    url=lambda program: f"{PREFIX}/{program}",
)
