"""OpenAI Chat Completions at ``/openai/v1``: every program is a model, by its name.

``POST /openai/v1/chat/completions`` runs the program named by ``model`` on the
conversation (``base.chat_request``: the last user message, the earlier turns
as its ``History`` input, the program's other inputs in the extra ``inputs``
field), streamed (``stream: true``) or not; ``GET /openai/v1/models`` lists the
programs. Any OpenAI client works with ``base_url=<service>/openai/v1`` and
the service's API key as its key (the SDK sends ``Authorization: Bearer``).

Mapping of the run's events (docs/protocol.md has the table):

- the content field's tokens are ``delta.content``, the reasoning field's
  ``delta.reasoning_content`` (the extension other OpenAI-compatible servers
  use); the streamed content always adds up to the final field;
- the last chunk (``finish_reason: "stop"``), and a whole completion, carry
  the extra field ``dspy``: ``{"run_id", "outputs"}``, every output of the
  prediction as ``POST /v1/<program>`` returns it;
- status events and other fields' tokens have no slot in this protocol and are
  not sent (the native stream, AI SDK and AG-UI carry them);
- an error before the first chunk is an HTTP error with OpenAI's body,
  ``{"error": {"message", "type", "code", "param"}}`` (note 1); after it, one
  ``data: {"error": {...}}`` frame ends the stream, which the ``openai`` SDK
  raises as ``APIError``; no ``[DONE]`` follows an error;
- a client that disconnects stops the run at once (there is no resume here).

Note 1. A route class turns FastAPI's validation errors and ``RunFailed`` on
these routes into OpenAI's error body, so that an OpenAI SDK raises its own
typed errors with our message; errors from the middlewares (401, 413) keep the
service's body, ``{"error": {"code", "message"}}``, which the SDK reads too.
"""

import time
import uuid
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from ..errors import Failure, RunFailed
from ..events import ErrorEvent, PredictionEvent
from ..logs import current_request_id
from ..reading import RUN_ID_HEADER, ReaderResponse
from .base import (
    ChatDep,
    ChatEventStream,
    ChatInputError,
    ChatProgram,
    Protocol,
    RunsDep,
    TextPart,
    Turn,
    chat_request,
    data_frame,
    text_of,
)

PREFIX = "/openai/v1"
OWNER = "dspy-forge"
MODEL_NOT_FOUND = "model_not_found"


class ChatMessage(BaseModel):
    """A message of the conversation."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None

    def turn(self) -> Turn:
        content = self.content
        if isinstance(content, list):
            content = text_of(content)
        role = "tool" if self.role == "function" else self.role
        return Turn(role, content or "")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """A chat completion request; sampling parameters are accepted and ignored (the
    program's LM settings are the spec's)."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(description="The program's name.")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    inputs: dict[str, Any] = Field(
        default_factory=dict,
        description="dspy-forge extension: the program's inputs other than the message.",
    )


class DspyExtra(BaseModel):
    """dspy-forge's extra field: the run and every output of the prediction."""

    run_id: str | None = None
    outputs: dict[str, Any]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    reasoning_content: str | None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatCompletion(BaseModel):
    """A whole completion (``stream: false``)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    dspy: DspyExtra


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop"] | None = None


class ChatCompletionChunk(BaseModel):
    """One frame of a streamed completion."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    dspy: DspyExtra | None = None


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = OWNER


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


class OpenAIErrorBody(BaseModel):
    message: str
    type: str
    code: str
    param: str | None = None
    request_id: str = Field(default_factory=current_request_id)


_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}


def error_body(failure: Failure, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error object for ``failure``: its ``type`` from the status, our ``code``."""
    kind = _TYPES.get(failure.status)
    if kind is None:
        kind = "invalid_request_error" if failure.status < 500 else "server_error"
    body = OpenAIErrorBody(message=failure.message, type=kind, code=failure.code, param=param)
    return {"error": body.model_dump()}


def error_response(
    failure: Failure, param: str | None = None, run_id: str | None = None
) -> JSONResponse:
    headers = {}
    if failure.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(failure.retry_after)))
    if run_id is not None:
        headers[RUN_ID_HEADER] = run_id
    return JSONResponse(error_body(failure, param), failure.status, headers=headers)


def _invalid(message: str, param: str | None = None) -> JSONResponse:
    return error_response(Failure(400, "invalid_request", message), param)


class OpenAIRoute(APIRoute):
    """A route whose errors have OpenAI's body (note 1)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return _validation_error(exc)
            except ChatInputError as exc:
                return _invalid(exc.message, exc.param)
            except RunFailed as exc:
                param = "model" if exc.failure.code == MODEL_NOT_FOUND else None
                return error_response(exc.failure, param, exc.run_id)

        return handle


def _validation_error(exc: RequestValidationError) -> JSONResponse:
    """The first validation error, located as OpenAI does (``messages.0.role``)."""
    errors = exc.errors()
    if not errors:
        return _invalid("The request does not validate.")
    error = errors[0]
    loc = [str(part) for part in error.get("loc", ()) if part != "body"]
    if error.get("type") == "json_invalid":
        return _invalid("The request body is not valid JSON.")
    if loc and loc[0] not in ChatCompletionRequest.model_fields:
        # An input checked by the runs (too long, a lone surrogate) is one of the program's.
        loc = ["inputs", *loc]
    where = ".".join(loc)
    return _invalid(f"{where}: {error.get('msg', 'invalid')}" if where else "Invalid body.", where)


router = APIRouter(prefix=PREFIX, tags=["openai"], route_class=OpenAIRoute)


def _program(chat: dict[str, ChatProgram], model: str) -> ChatProgram:
    """The program named ``model``, or 404 ``model_not_found`` (param ``model``)."""
    found = chat.get(model)
    if found is None:
        message = f"No model named {model!r}; GET {PREFIX}/models lists them."
        raise RunFailed(Failure(404, MODEL_NOT_FOUND, message))
    return found


@router.get("/models", summary="List the programs as models")
async def list_models(chat: ChatDep) -> ModelList:
    return ModelList(data=[Model(id=name) for name in chat])


@router.get("/models/{model}", summary="Read one program as a model")
async def read_model(model: str, chat: ChatDep) -> Model:
    _program(chat, model)
    return Model(id=model)


@router.post("/chat/completions", summary="Run a program on a conversation", response_model=None)
async def create_chat_completion(
    body: ChatCompletionRequest, request: Request, chat: ChatDep, runs: RunsDep
) -> ChatCompletion | Response:
    program = _program(chat, body.model)
    inputs = chat_request(program, [message.turn() for message in body.messages], body.inputs)
    created = int(time.time())
    if body.stream:
        reader = await runs.open(program.program, inputs, program.to_response, cancel_on_close=True)
        stream = OpenAIStream(program, reader, model=body.model, created=created)
        return ReaderResponse(stream.frames(), reader)
    prediction = await runs.predict(program.program, inputs, request.receive)
    outputs = program.to_response(prediction).model_dump(mode="json")
    reasoning = outputs.get(program.reasoning) if program.reasoning else None
    message = AssistantMessage(
        content=program.reply(outputs),
        reasoning_content=reasoning if isinstance(reasoning, str) else None,
    )
    return ChatCompletion(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=created,
        model=body.model,
        choices=[Choice(message=message)],
        usage=_usage(prediction),
        dspy=DspyExtra(outputs=outputs),
    )


def _usage(prediction: Any) -> Usage:
    """The prediction's token usage over every LM it called, when DSPy tracked it."""
    usage = Usage()
    get_usage = getattr(prediction, "get_lm_usage", None)
    for counts in (get_usage() or {}).values() if get_usage else ():
        usage.prompt_tokens += int(counts.get("prompt_tokens") or 0)
        usage.completion_tokens += int(counts.get("completion_tokens") or 0)
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
    return usage


@dataclass
class OpenAIStream(ChatEventStream):
    """A run as ``chat.completion.chunk`` frames, then ``[DONE]``."""

    model: str = ""
    created: int = 0

    def _chunk(self, delta: Delta, **extra: Any) -> bytes:
        chunk = ChatCompletionChunk(
            id=f"chatcmpl-{self.reader.run_id}",
            created=self.created,
            model=self.model,
            choices=[ChunkChoice(delta=delta, finish_reason=extra.pop("finish_reason", None))],
            **extra,
        )
        return data_frame(chunk.model_dump_json(exclude_none=True))

    def on_start(self) -> Iterable[bytes]:
        return [self._chunk(Delta(role="assistant", content=""))]

    def on_text(self, delta: str) -> Iterable[bytes]:
        return [self._chunk(Delta(content=delta))]

    def on_reasoning(self, delta: str) -> Iterable[bytes]:
        return [self._chunk(Delta(reasoning_content=delta))]

    def on_prediction(self, event: PredictionEvent) -> Iterable[bytes]:
        return []  # the outputs travel on the last chunk, after every delta

    def on_done(self) -> Iterable[bytes]:
        extra = DspyExtra(run_id=self.reader.run_id, outputs=self.outputs)
        return [self._chunk(Delta(), finish_reason="stop", dspy=extra), data_frame("[DONE]")]

    def on_error(self, event: ErrorEvent) -> Iterable[bytes]:
        failure = Failure(502, event.code, event.message)
        return [data_frame(error_body(failure))]


def _install(app: FastAPI) -> None:
    app.include_router(router)


OPENAI = Protocol(
    name="openai",
    setting="protocol_openai",
    install=_install,
    url=lambda program: f"{PREFIX}/chat/completions",
)
