"""The fake LM's HTTP surface: an OpenAI Chat Completions endpoint as a raw ASGI app.

Raw ASGI (no framework) and pre-serialised chunk frames keep the cost per streamed token low,
because benchmarks hold up to a thousand streams open against one process. Routes:

- ``POST /v1/chat/completions`` (``stream`` false or true) and ``GET /v1/models``;
- the same under ``/s/<scenario>/v1/...`` to inject failures (see :mod:`.scenario`);
- ``GET /_fake/stats``, ``GET /_fake/requests`` (the last requests received) and
  ``POST /_fake/reset`` for tests.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import orjson

from dspy_forge.dev.fakelm.prompt import message_text, parse_messages
from dspy_forge.dev.fakelm.responder import compose_reply
from dspy_forge.dev.fakelm.scenario import Scenario, ScenarioError, parse_scenario
from dspy_forge.dev.fakelm.stats import Stats
from dspy_forge.dev.fakelm.wire import (
    CONTEXT_WINDOW_ERROR,
    ERRORS,
    JSON_HEADERS,
    SSE_HEADERS,
    Receive,
    Reply,
    Scope,
    Send,
    closing_frames,
    content_frame_parts,
    read_body,
    send_error,
    send_json,
    send_not_found,
    usage,
)

__all__ = ["ABORT_LOG_FILTER", "DEFAULT_SCENARIO_KEY", "FakeLMApp", "create_app", "split_tokens"]


DEFAULT_SCENARIO_KEY = "default"
RECEIVED_KEPT = 200  # chat requests kept for GET /_fake/requests
"""Stats key of requests made on the plain ``/v1`` path."""

_TOKEN = re.compile(r"\s*\S+|\s+")
_SENTENCE_END = re.compile(r"\s*[a-z]+\.")  # the last word of a generated sentence
_EMOJI_HALVES = (b"\\ud83d", b"\\ude42")  # U+1F642 as JSON escapes of its surrogate pair


def split_tokens(text: str) -> list[str]:
    """Split text into word-sized chunks (leading whitespace kept) that join back to ``text``."""
    return _TOKEN.findall(text)


def create_app(default_scenario: str | None = None) -> FakeLMApp:
    """The ASGI app; ``default_scenario`` (e.g. ``delay-30ms``) applies on the plain path."""
    return FakeLMApp(default_scenario)


class _AbortStream(Exception):
    """Raised to make the ASGI server drop the connection mid-response (``break-after-<n>``)."""


class _QuietAbort(logging.Filter):
    """Keep uvicorn from logging a traceback for a connection dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _AbortStream)


ABORT_LOG_FILTER = _QuietAbort()
"""Log filter that hides the tracebacks of connections dropped on purpose."""


@dataclass(slots=True)
class _Connection:
    """Whether the client is still there; the watcher cancels the handler when it leaves."""

    finished: bool = False
    client_gone: bool = False


class FakeLMApp:
    """ASGI app speaking enough of the OpenAI Chat Completions API for DSPy and benchmarks.

    Attributes:
        stats: Live counters (also served at ``GET /_fake/stats``).
        default_scenario: Scenario text applied on the plain ``/v1`` path.
    """

    def __init__(self, default_scenario: str | None = None) -> None:
        parse_scenario(default_scenario or None)  # fail at start-up, not on the first request
        self.default_scenario = default_scenario or ""
        self.stats = Stats()
        # The last requests received, for tests that read what the LM was told.
        self.received: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECEIVED_KEPT)
        self._ids = itertools.count(1)
        logging.getLogger("uvicorn.error").addFilter(ABORT_LOG_FILTER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith("/_fake/"):
            await self._control(path, method, send)
            return
        key = DEFAULT_SCENARIO_KEY
        scenario_text = self.default_scenario
        if path.startswith("/s/"):
            scenario_text, _, rest = path[3:].partition("/")
            key, path = scenario_text, f"/{rest}"
        try:
            scenario = parse_scenario(scenario_text or None)
        except ScenarioError as error:
            await send_error(send, 400, str(error), "invalid_request_error", "unknown_scenario")
            return
        route = path.removeprefix("/v1")
        if route == "/chat/completions" and method == "POST":
            await self._chat(receive, send, scenario, key)
        elif route == "/models" and method == "GET":
            await self._models(send, scenario, key)
        else:
            await send_not_found(send, method, path)

    async def _control(self, path: str, method: str, send: Send) -> None:
        if path == "/_fake/stats" and method == "GET":
            await send_json(send, 200, self.stats.snapshot())
        elif path == "/_fake/requests" and method == "GET":
            await send_json(send, 200, list(self.received))
        elif path == "/_fake/reset" and method == "POST":
            self.stats.reset()
            self.received.clear()
            await send_json(send, 200, self.stats.snapshot())
        else:
            await send_not_found(send, method, path)

    async def _models(self, send: Send, scenario: Scenario, key: str) -> None:
        if await self._injected_error(send, scenario, key):
            return
        model = {"id": "fake-model", "object": "model", "created": 0, "owned_by": "dspy-forge"}
        await send_json(send, 200, {"object": "list", "data": [model]})

    async def _injected_error(self, send: Send, scenario: Scenario, key: str) -> bool:
        """Answer with the scenario's HTTP error, if it has one."""
        if scenario.context_window:
            self.stats.bump(key, "errors")
            await send_error(
                send,
                400,
                CONTEXT_WINDOW_ERROR,
                "invalid_request_error",
                "context_length_exceeded",
                param="messages",
            )
            return True
        if scenario.http_status is not None:
            self.stats.bump(key, "errors")
            status = scenario.http_status
            message, kind, code = ERRORS.get(
                status,
                (
                    f"Injected HTTP {status} from the fake LM.",
                    "server_error" if status >= 500 else "invalid_request_error",
                    None,
                ),
            )
            retry = [(b"retry-after", b"1")] if status in (429, 503) else []
            await send_error(send, status, message, kind, code, headers=retry)
            return True
        return False

    async def _chat(self, receive: Receive, send: Send, scenario: Scenario, key: str) -> None:
        body = await read_body(receive)
        self.stats.bump(key, "requests")
        if await self._injected_error(send, scenario, key):
            return
        try:
            request = orjson.loads(body)
            messages = request["messages"]
            if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
                raise TypeError("messages must be a list of objects")
        except (orjson.JSONDecodeError, KeyError, TypeError) as error:
            await send_error(
                send,
                400,
                f"Invalid chat completion request: {error}",
                "invalid_request_error",
                None,
            )
            return
        self.received.append({"scenario": key, "messages": messages, "tools": request.get("tools")})
        replies = _compose(request, messages, scenario)
        reply = replies[0]
        reply.id = f"chatcmpl-fake{next(self._ids):010x}"
        connection = _Connection()
        task = asyncio.current_task()
        watcher = asyncio.ensure_future(_watch(receive, connection, task))
        try:
            if request.get("stream"):
                await self._stream(send, scenario, key, reply)
            else:
                await self._complete(send, scenario, key, replies)
        except asyncio.CancelledError:
            if not connection.client_gone or task is None:
                raise
            task.uncancel()
            if not request.get("stream"):
                self.stats.bump(key, "completions_disconnected")
        finally:
            connection.finished = True
            watcher.cancel()

    async def _stream(self, send: Send, scenario: Scenario, key: str, reply: Reply) -> None:
        stats = self.stats
        stats.bump(key, "streams_started")
        stats.bump(key, "streams_open")
        try:
            await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
            prefix, suffix = content_frame_parts(reply)
            cut = _cut_point(scenario, len(reply.pieces))
            if scenario.first_s:
                await asyncio.sleep(scenario.first_s)
            # Pace against a schedule, so a busy event loop does not stretch every gap.
            clock = asyncio.get_running_loop().time
            due = clock()
            for index, piece in enumerate(reply.pieces):
                if index == cut:
                    await self._fail(scenario, key)
                if index and scenario.delay_s:
                    due += scenario.delay_s
                    await asyncio.sleep(max(0.0, due - clock()))
                delta = orjson.dumps(
                    {"role": "assistant", "content": piece} if index == 0 else {"content": piece}
                )
                if scenario.split_surrogates and _SENTENCE_END.fullmatch(piece):
                    # orjson refuses lone surrogates: write the JSON escapes ourselves.
                    first = delta[:-2] + _EMOJI_HALVES[0] + b'"}'
                    await send(
                        {
                            "type": "http.response.body",
                            "body": prefix + first + suffix,
                            "more_body": True,
                        }
                    )
                    delta = b'{"content":"' + _EMOJI_HALVES[1] + b'"}'
                frame = prefix + delta + suffix
                await send({"type": "http.response.body", "body": frame, "more_body": True})
                stats.bump(key, "chunks_sent")
            if cut == len(reply.pieces):
                await self._fail(scenario, key)
            await send(
                {"type": "http.response.body", "body": closing_frames(reply), "more_body": False}
            )
            stats.bump(key, "streams_completed")
        except asyncio.CancelledError:
            stats.bump(key, "streams_disconnected")
            raise
        finally:
            stats.bump(key, "streams_open", -1)

    async def _complete(
        self, send: Send, scenario: Scenario, key: str, replies: list[Reply]
    ) -> None:
        """A non-streaming answer; pacing switches delay it as if the tokens were generated."""
        reply = replies[0]
        pause = scenario.first_s + scenario.delay_s * max(0, len(reply.pieces) - 1)
        if pause:
            await asyncio.sleep(pause)
        completion_tokens = sum(len(r.pieces) for r in replies)
        body = orjson.dumps(
            {
                "id": reply.id,
                "object": "chat.completion",
                "created": reply.created,
                "model": reply.model,
                "choices": [
                    {
                        "index": index,
                        "message": {
                            "role": "assistant",
                            "content": "".join(r.pieces),
                            "refusal": None,
                        },
                        "logprobs": None,
                        "finish_reason": r.finish_reason,
                    }
                    for index, r in enumerate(replies)
                ],
                "usage": usage(reply, completion_tokens),
            }
        )
        if scenario.stall_after is not None:
            await _stall()
        if scenario.break_after is not None:
            headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            half = body[: len(body) // 2]
            await send({"type": "http.response.body", "body": half, "more_body": True})
            self.stats.bump(key, "connections_aborted")
            raise _AbortStream
        self.stats.bump(key, "completions")
        await send_json(send, 200, body)

    async def _fail(self, scenario: Scenario, key: str) -> None:
        """Stall until the client leaves, or drop the connection, as the scenario says."""
        if scenario.stall_after is not None:
            await _stall()
        self.stats.bump(key, "connections_aborted")
        raise _AbortStream


def _compose(request: dict[str, Any], messages: list[Any], scenario: Scenario) -> list[Reply]:
    """One reply per requested choice (``n``; streams always get one), split into tokens."""
    response_format = request.get("response_format")
    prompt = parse_messages(
        messages, response_format if isinstance(response_format, dict) else None
    )
    n = request.get("n")
    choices = n if isinstance(n, int) and 0 < n <= 128 and not request.get("stream") else 1
    max_tokens = request.get("max_completion_tokens") or request.get("max_tokens")
    stream_options = request.get("stream_options")
    include_usage = isinstance(stream_options, dict) and bool(stream_options.get("include_usage"))
    prompt_tokens = sum(len(message_text(m)) for m in messages) // 4 + 1
    replies: list[Reply] = []
    for variant in range(choices):
        text = compose_reply(
            prompt,
            words=scenario.words,
            react_steps=scenario.react_steps,
            variant=variant,
            echo=scenario.echo or (scenario.needs_demo and prompt.demos > 0),
        )
        pieces = split_tokens(text)
        finish = "stop"
        if isinstance(max_tokens, int) and 0 < max_tokens < len(pieces):
            pieces, finish = pieces[:max_tokens], "length"
        replies.append(
            Reply(
                id="",
                created=int(time.time()),
                model=str(request.get("model") or "fake-model"),
                pieces=pieces,
                finish_reason=finish,
                prompt_tokens=prompt_tokens,
                include_usage=include_usage,
            )
        )
    return replies


def _cut_point(scenario: Scenario, pieces: int) -> int | None:
    """Index of the chunk at which a stall/break switch strikes (``pieces``: after the last)."""
    after = scenario.stall_after if scenario.stall_after is not None else scenario.break_after
    return None if after is None else min(after, pieces)


async def _stall() -> None:
    """Wait until the watcher cancels us because the client went away."""
    await asyncio.get_running_loop().create_future()


async def _watch(receive: Receive, connection: _Connection, task: asyncio.Task[Any] | None) -> None:
    """Cancel the request handler as soon as the client disconnects before the response ends."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if not connection.finished and task is not None:
                connection.client_gone = True
                task.cancel()
            return


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
