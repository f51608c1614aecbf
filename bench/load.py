"""The load client: many concurrent SSE streams over httpx + httpx-sse, timed per event.

One client drives all three servers. It understands both wire formats:

- a generated service's protocol (docs/protocol.md): ``token`` events carry ``chunk``,
  ``prediction`` carries the outputs, ``done`` ends a good stream, ``error`` a failed one;
- the note's format (baseline and floor): unnamed events whose JSON has a ``type``
  (``token``, ``status``, ``result``/``complete``), ending with ``data: [DONE]``.

Times are ``time.perf_counter()`` seconds. "First output" is the first token or, for a
stream that carried no token at all, the event with the final answer: what a user of that
stream saw first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import aconnect_sse


@dataclass
class StreamResult:
    """What one stream delivered, and when (seconds from the request)."""

    ok: bool = False
    error: str | None = None
    first_token: float | None = None
    first_output: float | None = None
    duration: float | None = None
    tokens: int = 0
    text: str = ""
    gaps: list[float] = field(default_factory=list)
    final: str | None = None  # the listened output's final value, when the stream carries it


@dataclass
class LoadResult:
    """A batch of streams."""

    streams: list[StreamResult]
    wall: float
    peak_open: int = 0

    @property
    def completed(self) -> int:
        return sum(1 for s in self.streams if s.ok)

    @property
    def errors(self) -> int:
        return sum(1 for s in self.streams if not s.ok)

    def error_kinds(self) -> dict[str, int]:
        kinds: dict[str, int] = {}
        for stream in self.streams:
            if not stream.ok:
                kinds[stream.error or "?"] = kinds.get(stream.error or "?", 0) + 1
        return kinds

    def tokens_per_stream(self) -> float:
        return sum(s.tokens for s in self.streams) / max(1, len(self.streams))

    def ttft(self) -> list[float]:
        return [s.first_output for s in self.streams if s.first_output is not None]

    def gaps(self) -> list[float]:
        return [gap for s in self.streams for gap in s.gaps]


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, nearest rank) of ``values``, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


async def one_stream(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], field_name: str | None
) -> StreamResult:
    """POST ``body`` to ``path`` and read the SSE stream to its end."""
    result = StreamResult()
    start = time.perf_counter()
    last_token: float | None = None
    try:
        async with aconnect_sse(client, "POST", path, json=body) as source:
            if source.response.status_code != 200:
                await source.response.aread()
                result.error = f"http {source.response.status_code}"
                return result
            async for sse in source.aiter_sse():
                now = time.perf_counter()
                if sse.data == "[DONE]":
                    result.ok = True
                    break
                if not sse.data:
                    # A ": ping" keep-alive: httpx-sse reports it as an empty message once
                    # an event has set an id (the last id persists).
                    continue
                try:
                    data = json.loads(sse.data)
                except ValueError:
                    result.error = f"bad event {sse.event!r} {sse.data[:40]!r} id {sse.id!r}"
                    return result
                if sse.event == "message":
                    kind = data.get("type")
                    if kind in ("result", "complete"):
                        kind, data = "prediction", {"outputs": {field_name: data.get("answer")}}
                else:
                    kind = sse.event
                if kind == "token":
                    chunk = data.get("chunk", "")
                    result.tokens += 1
                    result.text += chunk
                    if last_token is None:
                        result.first_token = now - start
                        result.first_output = result.first_token
                    else:
                        result.gaps.append(now - last_token)
                    last_token = now
                elif kind == "prediction":
                    if field_name is not None:
                        result.final = data.get("outputs", {}).get(field_name)
                    if result.first_output is None:
                        result.first_output = now - start
                elif kind == "error":
                    result.error = f"error event {data.get('code')}"
                    return result
                elif kind == "done":
                    result.ok = True
                    break
            if not result.ok:
                result.error = "cut off"
    except asyncio.CancelledError:
        result.error = "client deadline"
        result.ok = False
    except httpx.HTTPError as exc:
        result.error = type(exc).__name__
    finally:
        result.duration = time.perf_counter() - start
    return result


def make_client(base_url: str) -> httpx.AsyncClient:
    """One client for a whole batch: no connection limit, long timeouts."""
    return httpx.AsyncClient(
        base_url=base_url,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
        timeout=httpx.Timeout(600, connect=30),
    )


async def closed_loop(
    base_url: str,
    path: str,
    count: int,
    concurrency: int,
    body: Callable[[int], dict[str, Any]],
    field_name: str | None,
) -> LoadResult:
    """``count`` streams, ``concurrency`` at a time (each worker starts its next when one ends)."""
    results: list[StreamResult] = []
    indices = iter(range(count))
    open_now = 0
    peak = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal open_now, peak
        for index in indices:
            open_now += 1
            peak = max(peak, open_now)
            try:
                results.append(await one_stream(client, path, body(index), field_name))
            finally:
                open_now -= 1

    start = time.perf_counter()
    async with make_client(base_url) as client:
        await asyncio.gather(*(worker(client) for _ in range(min(concurrency, count))))
    return LoadResult(results, time.perf_counter() - start, peak)


async def open_loop(
    base_url: str,
    path: str,
    count: int,
    body: Callable[[int], dict[str, Any]],
    field_name: str | None,
    *,
    ramp_per_s: float,
    deadline: float,
    while_open: Callable[[], Any] | None = None,
) -> LoadResult:
    """Start ``count`` streams at ``ramp_per_s`` and hold them all open together.

    Streams still running ``deadline`` seconds after the first start are cancelled and
    count as errors. ``while_open`` (a coroutine function) runs alongside, e.g. to sample
    the server, and is cancelled at the end.
    """
    results: list[StreamResult | None] = [None] * count
    open_now = 0
    peak = 0

    async def one(client: httpx.AsyncClient, index: int) -> None:
        nonlocal open_now, peak
        await asyncio.sleep(index / ramp_per_s)
        open_now += 1
        peak = max(peak, open_now)
        try:
            results[index] = await one_stream(client, path, body(index), field_name)
        finally:
            open_now -= 1

    start = time.perf_counter()
    async with make_client(base_url) as client:
        sampler = asyncio.ensure_future(while_open()) if while_open else None
        tasks = [asyncio.ensure_future(one(client, i)) for i in range(count)]
        _, pending = await asyncio.wait(tasks, timeout=deadline)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if sampler is not None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
    streams = [r if r is not None else StreamResult(error="client deadline") for r in results]
    return LoadResult(streams, time.perf_counter() - start, peak)


async def lm_first_chunk(
    api_base: str,
    prompts: dict[str, Any],
    count: int,
    concurrency: int,
) -> list[float]:
    """The fake LM's own time to the first chunk of the listened field, read directly.

    ``prompts`` is one program's capture (see :mod:`bench.inprocess`); only its first LM
    call is made, which is where the listened field first appears for both programs.
    Returns one time per request, in seconds.
    """
    from bench.chatfields import FieldScan

    times: list[float] = []
    indices = iter(range(count))

    async def worker(client: httpx.AsyncClient) -> None:
        for index in indices:
            question = f"request {index}: what happened?"
            messages = [
                {**m, "content": m["content"].replace(prompts["placeholder"], question)}
                for m in prompts["calls"][0]
            ]
            body = {"model": "fake-model", "messages": messages, "stream": True}
            scan = FieldScan(prompts["field"])
            first: float | None = None
            start = time.perf_counter()
            async with client.stream("POST", "/chat/completions", json=body) as response:
                response.raise_for_status()
                async for line in response.aiter_lines():
                    if first is not None or not line.startswith("data: {"):
                        continue
                    choices = json.loads(line[6:]).get("choices") or ()
                    content = choices[0].get("delta", {}).get("content") if choices else None
                    if content and scan.feed(content):
                        first = time.perf_counter() - start
            if first is not None:
                times.append(first)

    async with make_client(api_base) as client:
        await asyncio.gather(*(worker(client) for _ in range(min(concurrency, count))))
    return times


def run(coro: Any) -> Any:
    """Run a coroutine on uvloop when it is installed (a cheaper client leaves CPU to servers)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
