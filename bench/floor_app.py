"""The floor: relay the fake LM's token stream as SSE, with no DSPy in between.

For each program the floor replays the chat requests that DSPy makes for it (captured once
from the generated program by :mod:`bench.inprocess`, with the question swapped in), one
call after the other over a minimal HTTP/1.1 client on asyncio streams (keep-alive
connections, no limit: httpx's pool costs more per stream as concurrency grows, so it is no
floor at a few hundred streams), and relays the chunks of the
listened field (``answer`` for qa, ``next_thought`` for the agent) as
``data: {"type": "token", "chunk": ...}``, then the final value as
``data: {"type": "result", "answer": ...}`` and ``data: [DONE]``. So the fake LM sends it
exactly the token stream it sends the other servers, and the client gets the same tokens;
the only work besides relaying is a scan for DSPy's ``[[ ## field ## ]]`` markers.

``POST /v1/echo/stream?tokens=N&pace_ms=P`` sends N token events P ms apart with no LM at
all: what HTTP and SSE alone cost.

Serve with ``LM_API_BASE=http://127.0.0.1:PORT/v1 FLOOR_PROMPTS=prompts.json
uvicorn bench.floor_app:app``; ``FLOOR_PROMPTS`` is the JSON written by
``python -m bench.inprocess capture``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from bench.chatfields import FieldScan, field_value

API_BASE = os.environ.get("LM_API_BASE", "http://127.0.0.1:8001/v1")
API_KEY = os.environ.get("LM_API_KEY", "fake")
MODEL = os.environ.get("LM_MODEL", "openai/gpt-4o-mini").split("/", 1)[-1]
_DONE = b"data: [DONE]\n\n"


class Query(BaseModel):
    question: str


def load_prompts() -> dict[str, Any]:
    path = os.environ.get("FLOOR_PROMPTS")
    return orjson.loads(Path(path).read_bytes()) if path else {}


PROMPTS = load_prompts()


class RawLM:
    """A minimal HTTP/1.1 client for the fake LM's streamed completions: asyncio streams,
    keep-alive connections reused last-in first-out, chunked transfer decoding, no pool scans."""

    def __init__(self, api_base: str, api_key: str) -> None:
        url = urlsplit(api_base)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 80
        self.path = f"{url.path.rstrip('/')}/chat/completions"
        self.head = (
            f"POST {self.path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
            f"authorization: Bearer {api_key}\r\ncontent-type: application/json\r\n"
        ).encode()
        # Idle keep-alive connections and when they went idle; uvicorn closes one after 5 s.
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def _send(self, request: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Send ``request`` on a live idle connection or a new one; its status line is 200."""
        now = time.monotonic()
        while self.idle:
            reader, writer, since = self.idle.pop()
            if now - since < 3.0 and not reader.at_eof():
                break
            writer.close()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=2**20)
        writer.write(request)
        status = await reader.readline()
        if not status:  # closed by the server while idle: once more on a new connection
            writer.close()
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=2**20)
            writer.write(request)
            status = await reader.readline()
        if b" 200 " not in status:
            writer.close()
            raise RuntimeError(f"fake LM answered {status!r}")
        return reader, writer

    async def lines(self, body: bytes) -> AsyncIterator[bytes]:
        """The ``data: ...`` lines of one streamed completion."""
        request = self.head + b"content-length: %d\r\n\r\n" % len(body) + body
        reader, writer = await self._send(request)
        while await reader.readline() not in (b"\r\n", b""):
            pass
        done = False
        buffer = b""
        try:
            while True:
                size = int((await reader.readline()).split(b";", 1)[0], 16)
                if size == 0:
                    await reader.readline()
                    done = True
                    break
                buffer += await reader.readexactly(size)
                await reader.readexactly(2)
                *complete, buffer = buffer.split(b"\n")
                for line in complete:
                    if line.startswith(b"data: "):
                        yield line
        finally:
            if done:
                self.idle.append((reader, writer, time.monotonic()))
            else:
                writer.close()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.client = RawLM(API_BASE, API_KEY)
    yield
    for _, writer, _ in app.state.client.idle:
        writer.close()


app = FastAPI(lifespan=lifespan)


async def relay(client: RawLM, program: dict[str, Any], question: str) -> AsyncIterator[bytes]:
    answer: str | None = None
    for messages in program["calls"]:
        body = {
            "model": MODEL,
            "messages": [
                {**m, "content": m["content"].replace(program["placeholder"], question)}
                for m in messages
            ],
            "stream": True,
        }
        scan = FieldScan(program["field"])
        async for line in client.lines(orjson.dumps(body)):
            if line == b"data: [DONE]":
                continue
            choices = orjson.loads(line[6:]).get("choices") or ()
            content = choices[0].get("delta", {}).get("content") if choices else None
            if content and (piece := scan.feed(content)):
                yield b"data: " + orjson.dumps({"type": "token", "chunk": piece}) + b"\n\n"
        answer = field_value(scan.text, program["final"]) or answer
    yield b"data: " + orjson.dumps({"type": "result", "answer": answer}) + b"\n\n"
    yield _DONE


@app.post("/v1/echo/stream")
async def echo(query: Query, tokens: int = 20, pace_ms: float = 2.0) -> StreamingResponse:
    """``tokens`` token events ``pace_ms`` apart with no LM at all: the cost of HTTP and SSE."""

    async def frames() -> AsyncIterator[bytes]:
        for _ in range(tokens):
            await asyncio.sleep(pace_ms / 1000)
            yield b"data: " + orjson.dumps({"type": "token", "chunk": " word"}) + b"\n\n"
        yield b"data: " + orjson.dumps({"type": "result", "answer": None}) + b"\n\n"
        yield _DONE

    return StreamingResponse(frames(), media_type="text/event-stream")


@app.post("/v1/{program}/stream")
async def stream(program: str, query: Query) -> StreamingResponse:
    if program not in PROMPTS:
        raise HTTPException(404, f"no captured prompts for {program}")
    return StreamingResponse(
        relay(app.state.client, PROMPTS[program], query.question), media_type="text/event-stream"
    )


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
