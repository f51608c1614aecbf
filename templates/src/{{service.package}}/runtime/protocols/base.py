"""What every client protocol shares: its declaration, the chat mapping, the event encoder.

A protocol is one module of this package. It declares itself as a
:class:`Protocol` (its name, the setting that turns it on, how it installs its
routes, where it serves a program), and answers with an encoding of a run's
events, read through ``Runs.open`` (``reading.OpenRun``). The native SSE
protocol (``sse.py``) is the reference; nothing here changes a run.

Chat protocols (OpenAI Chat Completions, the AI SDK's ``useChat``) speak in
messages, not in a signature's fields: :class:`ChatProgram` says, per program,
which input gets the last user message, which ``History`` input gets the
earlier turns, and which output is the reply's text (resolved from the spec's
``chat`` by the generator; ``chat.py``). :class:`ChatEventStream` turns the
run's events into a reply: the content field's tokens become text, the
reasoning field's tokens reasoning, and the prediction completes the text (a
field nobody listened to arrives whole) so that the text always equals the
final field; each protocol encodes those as its own frames.
"""

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import dspy
from fastapi import Depends, FastAPI, Request
from fastapi.sse import KEEPALIVE_COMMENT, format_sse_event
from pydantic import BaseModel, ConfigDict, ValidationError

from ..events import DoneEvent, ErrorEvent, Event, PredictionEvent, StatusEvent, TokenEvent
from ..outputs import Outputs
from ..program import ServedProgram
from ..reading import OpenRun
from ..runs import Runs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Protocol:
    """A client protocol of the service, as the app and ``GET /v1/programs`` see it."""

    name: str  # its key in /v1/programs' `protocols`
    setting: str  # the Settings attribute (a bool) that turns it on
    install: Callable[[FastAPI], None]  # add its routes (or mount its app) to the app
    url: Callable[[str], str]  # where it serves the program of that name
    # What it runs while the app serves (MCP's session manager), entered in the app's lifespan.
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None


@dataclass(frozen=True)
class ChatProgram:
    """How the chat protocols reach one program.

    ``message``: the input that receives the last user message (None: that
    message is a JSON object of the inputs); ``history``: the ``History`` input
    that receives the earlier turns, if any; ``content``: the ``str`` output
    that is the reply's text (None: the reply is the outputs as JSON);
    ``reasoning``: the output whose tokens are the reply's reasoning.
    """

    program: ServedProgram
    request: type[BaseModel]
    response: type[Outputs]
    message: str | None
    history: str | None
    content: str | None
    reasoning: str | None = None

    @property
    def name(self) -> str:
        return self.program.name

    def to_response(self, prediction: dspy.Prediction) -> BaseModel:
        return self.response.from_prediction(prediction)

    def reply(self, outputs: Mapping[str, Any]) -> str:
        """The reply's text for a prediction's outputs."""
        if self.content is None:
            return json.dumps(dict(outputs), ensure_ascii=False)
        value = outputs.get(self.content)
        return value if isinstance(value, str) else ""


class TextPart(BaseModel):
    """A part of a chat message's content; only ``text`` parts reach a program."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


def text_of(parts: Iterable[TextPart]) -> str:
    """A message's text: its ``text`` parts, joined."""
    return "".join(part.text or "" for part in parts if part.type == "text")


@dataclass(frozen=True)
class Turn:
    """One message of a conversation, reduced to what a program can take: its text."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    text: str


class ChatInputError(Exception):
    """A conversation that gives the program no valid inputs; ``param`` says where."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def chat_request(chat: ChatProgram, turns: list[Turn], inputs: Mapping[str, Any]) -> BaseModel:
    """The program's request body for a conversation, plus ``inputs`` for its other fields.

    The last user message fills ``chat.message``; each earlier user message
    and the assistant reply after it become one ``History`` entry. System
    messages are dropped: the program's instructions are its signature's.
    """
    users = [index for index, turn in enumerate(turns) if turn.role == "user"]
    if not users:
        raise ChatInputError("The messages hold no user message.", "messages")
    last = users[-1]
    values: dict[str, Any] = dict(inputs)
    if chat.message is None:
        try:
            given = json.loads(turns[last].text)
        except ValueError:
            given = None
        if not isinstance(given, dict):
            raise ChatInputError(
                f"The {chat.name} program takes no text message: send its inputs as a JSON "
                "object in the last user message.",
                "messages",
            )
        values |= given
    else:
        values[chat.message] = turns[last].text
    if chat.history is not None:
        values[chat.history] = {"messages": _history(chat, turns[:last])}
    try:
        return chat.request.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        param = "messages" if error["loc"][:1] in ((chat.message,), (chat.history,)) else None
        raise ChatInputError(
            f"The {chat.name} program's inputs do not validate: {where}: {error['msg']}",
            param or f"inputs.{where}",
        ) from None


def _history(chat: ChatProgram, turns: list[Turn]) -> list[dict[str, str]]:
    """Earlier turns as ``dspy.History`` messages: one per user message, with its reply."""
    entries: list[dict[str, str]] = []
    for turn in turns:
        if turn.role == "user":
            entries.append({chat.message or "message": turn.text})
        elif turn.role == "assistant" and entries and chat.content is not None:
            entries[-1][chat.content] = turn.text
    return entries


def data_frame(payload: BaseModel | dict[str, Any] | str) -> bytes:
    """One ``data:`` frame (no event name, no id): the framing of OpenAI and the AI SDK."""
    if isinstance(payload, BaseModel):
        text = payload.model_dump_json(exclude_none=True)
    elif isinstance(payload, dict):
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    else:
        text = payload
    return format_sse_event(data_str=text)


@dataclass
class ChatEventStream:
    """One run's events as one protocol's frames; a protocol overrides the ``on_*`` hooks.

    Each hook returns the frames for its event (often none). The base keeps
    what the reply's text streamed so far, so that :meth:`on_text` receives,
    over the run, exactly the final content (the rest arrives with the
    prediction); then :meth:`on_prediction`, and :meth:`on_done` or
    :meth:`on_error` last.
    """

    chat: ChatProgram
    reader: OpenRun
    streamed: str = ""  # the reply's text sent so far
    reasoned: str = ""  # the reasoning sent so far
    outputs: dict[str, Any] = field(default_factory=dict)  # the prediction's, once in

    async def frames(self) -> AsyncIterator[bytes]:
        """The whole body: the protocol's opening, every event's frames, its closing.

        The frames of one batch of events (``OpenRun.event_batches``) go out
        as one write, the opening with the first: a write costs more than
        many frames.
        """
        chunk = b"".join(self.on_start())
        async with contextlib.aclosing(self.reader.event_batches()) as batches:
            async for batch in batches:
                events = [None] if batch is None else batch  # None: a keep-alive is due
                chunk += b"".join(frame for event in events for frame in self.on_event(event))
                if chunk:
                    yield chunk
                    chunk = b""
        if chunk:
            yield chunk

    def on_event(self, event: Event | None) -> Iterable[bytes]:
        chat = self.chat
        if event is None:
            return self.on_keepalive()
        if isinstance(event, TokenEvent):
            if chat.content is not None and event.field == chat.content:
                self.streamed += event.chunk
                return self.on_text(event.chunk)
            if chat.reasoning is not None and event.field == chat.reasoning:
                self.reasoned += event.chunk
                return self.on_reasoning(event.chunk)
            return self.on_token(event)
        if isinstance(event, StatusEvent):
            return self.on_status(event)
        if isinstance(event, PredictionEvent):
            self.outputs = event.outputs
            return [*self._rest(chat.reply(event.outputs)), *self.on_prediction(event)]
        if isinstance(event, DoneEvent):
            return self.on_done()
        assert isinstance(event, ErrorEvent)
        return self.on_error(event)

    def _rest(self, final: str) -> Iterable[bytes]:
        """The part of the reply's text not streamed yet (all of it, when nothing listened)."""
        if not final.startswith(self.streamed):
            logger.warning("%s: the streamed reply differs from its final value", self.chat.name)
            return []
        rest = final[len(self.streamed) :]
        if not rest:
            return []
        self.streamed = final
        return self.on_text(rest)

    def on_start(self) -> Iterable[bytes]:
        return []

    def on_text(self, delta: str) -> Iterable[bytes]:
        return []

    def on_reasoning(self, delta: str) -> Iterable[bytes]:
        return []

    def on_token(self, event: TokenEvent) -> Iterable[bytes]:
        """A token of a field that is neither the reply nor its reasoning (e.g. ReAct's
        next_thought)."""
        return []

    def on_status(self, event: StatusEvent) -> Iterable[bytes]:
        return []

    def on_prediction(self, event: PredictionEvent) -> Iterable[bytes]:
        return []

    def on_done(self) -> Iterable[bytes]:
        return []

    def on_error(self, event: ErrorEvent) -> Iterable[bytes]:
        return []

    def on_keepalive(self) -> Iterable[bytes]:
        return [KEEPALIVE_COMMENT]  # an SSE comment, which every SSE parser skips


async def get_runs(request: Request) -> Runs:
    """Admission and limits of every run."""
    return request.app.state.runs


async def get_chat(request: Request) -> dict[str, ChatProgram]:
    """Every program, as the chat protocols reach it (``chat.py``), by name."""
    return request.app.state.chat


# The dependencies every protocol's routes take.
RunsDep = Annotated[Runs, Depends(get_runs)]
ChatDep = Annotated[dict[str, ChatProgram], Depends(get_chat)]
