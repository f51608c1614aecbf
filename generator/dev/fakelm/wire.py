"""The bytes the fake LM sends: OpenAI's chunk, completion and error bodies, pre-serialised.

Building each stream's envelope once leaves one small ``orjson.dumps`` per token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

JSON_HEADERS = [(b"content-type", b"application/json")]


SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


DONE = b"data: [DONE]\n\n"


ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request (injected by the fake LM).", "invalid_request_error", None),
    401: (
        "Incorrect API key provided: fake. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    ),
    403: ("You are not allowed to access this model.", "permission_denied", None),
    404: (
        "The model `fake-model` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    429: (
        "Rate limit reached for fake-model in organization org-fake on requests per min "
        "(RPM): Limit 1, Used 1, Requested 1. Please try again in 1s.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


CONTEXT_WINDOW_ERROR = (
    "This model's maximum context length is 8192 tokens. However, your messages resulted in "
    "9001 tokens. Please reduce the length of the messages."
)
Scope = MutableMapping[str, Any]


Message = MutableMapping[str, Any]


Receive = Callable[[], Awaitable[Message]]


Send = Callable[[Message], Awaitable[None]]


@dataclass(slots=True)
class Reply:
    """One choice of a completion, ready to send: its token pieces, ids and usage inputs."""

    id: str
    created: int
    model: str
    pieces: list[str]
    finish_reason: str
    prompt_tokens: int
    include_usage: bool


def usage(reply: Reply, completion_tokens: int | None = None) -> dict[str, int]:
    completion = len(reply.pieces) if completion_tokens is None else completion_tokens
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": reply.prompt_tokens + completion,
    }


def chunk(reply: Reply, **fields: Any) -> dict[str, Any]:
    return {
        "id": reply.id,
        "object": "chat.completion.chunk",
        "created": reply.created,
        "model": reply.model,
        **fields,
    }


def content_frame_parts(reply: Reply) -> tuple[bytes, bytes]:
    """The bytes before and after the ``delta`` object of every content chunk of a stream.

    Serialising the envelope once per stream leaves one small ``orjson.dumps`` per token.
    """
    marker = {"__delta__": 0}
    choice = {"index": 0, "delta": marker, "logprobs": None, "finish_reason": None}
    frame = b"data: " + orjson.dumps(chunk(reply, choices=[choice])) + b"\n\n"
    prefix, suffix = frame.split(orjson.dumps(marker))
    return prefix, suffix


def closing_frames(reply: Reply) -> bytes:
    """The finish-reason chunk, the usage chunk (if asked for) and ``[DONE]``, like OpenAI."""
    choice = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": reply.finish_reason}
    chunks = [chunk(reply, choices=[choice])]
    if reply.include_usage:
        chunks.append(chunk(reply, choices=[], usage=usage(reply)))
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + DONE


async def send_json(
    send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *JSON_HEADERS,
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_not_found(send: Send, method: str, path: str) -> None:
    message = f"Unknown request URL: {method} {path}."
    await send_error(send, 404, message, "invalid_request_error", None)


async def send_error(
    send: Send,
    status: int,
    message: str,
    kind: str,
    code: str | None,
    *,
    param: str | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """An error with OpenAI's body shape, which clients map to typed exceptions."""
    payload = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    await send_json(send, status, payload, headers)


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)
