"""Reconnecting SSE clients for the resumable-run tests: two real Node libraries and one in Python.

A resumable run is only as good as what an ordinary client makes of it: one
that follows the SSE spec reconnects after a cut on its own, re-sends the
request with ``Last-Event-ID``, and must then see every event exactly once.
So the tests drive real client libraries rather than a loop written to suit
the server:

- :func:`node_events` / :func:`anode_events` run ``tests/system/js/``'s
  scripts: ``fetch_event_source`` (``@microsoft/fetch-event-source``, what web
  front-ends use to POST to an SSE endpoint) and ``eventsource`` (the WHATWG
  ``EventSource`` for Node, with its ``fetch`` option making the request a
  POST). Both reconnect by themselves; ``npm ci --prefix tests/system/js``
  installs them (``.ci/run`` does).
- :func:`httpx_sse_events` is a Python client. It is **hand-written**: the
  reconnect loop of the SSE spec over httpx and httpx-sse, because
  ``aiohttp-sse-client`` 0.2.1 (and its fork ``aiohttp-sse-client2`` 0.3.0)
  reconnects only when a response ends cleanly: a connection cut in the middle
  of a chunked body raises ``ClientPayloadError`` out of its iterator instead.

Every client returns the same thing: the events as dicts ``{"id", "event",
"data"}`` (``data`` the raw string, ``event`` ``"message"`` for a frame
without one), in the order received, ending, when the server answered a
request with a status that is not retried, with ``{"status": N, "body": ...}``
(``body`` parsed as JSON when it is JSON). Each stops after an event ``done``
or ``error``; each is bounded by ``timeout`` seconds and ``max_reconnects``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import aconnect_sse

JS_DIR = Path(__file__).resolve().parent / "js"
NODE_SCRIPTS = ("fetch_event_source", "eventsource")
LAST_EVENTS = frozenset({"done", "error"})
DEFAULT_RETRY_MS = 1000  # until the server sends retry:; the spec leaves it to the client

Event = dict[str, Any]


class ClientFailed(RuntimeError):
    """A client script ended without an answer: timeout, too many reconnects, a crash."""


def node_command(
    script: str,
    url: str,
    body: Any,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
    max_reconnects: int = 50,
) -> list[str]:
    """The command line running ``tests/system/js/<script>.mjs`` (``script`` from NODE_SCRIPTS)."""
    name = script.removesuffix(".mjs")
    if name not in NODE_SCRIPTS:
        raise ValueError(f"no client script {script!r}: one of {NODE_SCRIPTS}")
    node = shutil.which("node")
    if node is None:
        raise ClientFailed("node is not installed")
    if not (JS_DIR / "node_modules").is_dir():
        raise ClientFailed(f"run `npm ci --prefix {JS_DIR}` first (.ci/run does)")
    return [
        node,
        str(JS_DIR / f"{name}.mjs"),
        url,
        json.dumps(body),
        json.dumps(headers or {}),
        str(timeout),
        str(max_reconnects),
    ]


def _node_result(
    command: list[str], code: int | None, stdout: str, stderr: str, diagnostics: list[Event] | None
) -> list[Event]:
    """The events a script printed; raises :class:`ClientFailed` unless it exited 0 or 2."""
    if diagnostics is not None:
        for line in stderr.splitlines():
            try:
                diagnostics.append(json.loads(line))
            except json.JSONDecodeError:
                diagnostics.append({"stderr": line})
    if code not in (0, 2):
        raise ClientFailed(
            f"{Path(command[1]).name} exited with {code}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        )
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def node_events(
    script: str,
    url: str,
    body: Any,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
    *,
    max_reconnects: int = 50,
    diagnostics: list[Event] | None = None,
) -> list[Event]:
    """Stream one POST to ``url`` through a Node client script and return its events.

    ``script`` is ``"fetch_event_source"`` or ``"eventsource"``. ``body`` is
    sent as JSON with ``headers`` (for instance ``Last-Event-ID`` to start by
    resuming). ``diagnostics``, if given, receives the script's stderr lines
    (one dict per connection: ``{"connection": n, "last-event-id": ...}``, and
    one per error). Blocks: in an async test whose server runs in the test's
    own event loop, use :func:`anode_events`.

    Raises:
        ClientFailed: the script timed out, gave up reconnecting or crashed.
    """
    command = node_command(script, url, body, headers, timeout, max_reconnects)
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout + 10, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise ClientFailed(f"{script} did not end within {timeout + 10} s") from error
    return _node_result(command, done.returncode, done.stdout, done.stderr, diagnostics)


async def anode_events(
    script: str,
    url: str,
    body: Any,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,  # noqa: ASYNC109 - also the script's own bound
    *,
    max_reconnects: int = 50,
    diagnostics: list[Event] | None = None,
) -> list[Event]:
    """:func:`node_events` without blocking the event loop."""
    command = node_command(script, url, body, headers, timeout, max_reconnects)
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(timeout + 10):
            stdout, stderr = await process.communicate()
    except TimeoutError as error:
        process.kill()
        await process.wait()
        raise ClientFailed(f"{script} did not end within {timeout + 10} s") from error
    return _node_result(command, process.returncode, stdout.decode(), stderr.decode(), diagnostics)


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


async def httpx_sse_events(
    url: str,
    body: Any,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,  # noqa: ASYNC109 - the same signature as node_events
    *,
    max_reconnects: int = 50,
    diagnostics: list[Event] | None = None,
    client: httpx.AsyncClient | None = None,
) -> list[Event]:
    """Stream one POST to ``url``, reconnecting as the SSE spec says; return its events.

    Hand-written (see the module's docstring), following the spec's
    EventSource: after a broken connection or a stream that ends before
    ``done``/``error``, wait the last ``retry:`` interval (1 s until one
    comes), then re-send the same request with ``Last-Event-ID`` set to the
    last id received. A 4xx answer (or any answer that is neither a 200
    ``text/event-stream`` nor a 5xx) ends it with a ``{"status", "body"}``
    entry; a 5xx or a transport error is retried, up to ``max_reconnects``
    times. A frame without data is not an event (the spec's rule; it also
    drops the empty events httpx-sse makes of ``: ping`` frames once an id has
    been seen). ``diagnostics`` receives one dict per connection attempt and
    per error, as the Node scripts print them.

    Raises:
        TimeoutError: no ``done``/``error`` within ``timeout`` seconds.
        ClientFailed: more than ``max_reconnects`` reconnects.
    """
    events: list[Event] = []
    log: list[Event] = diagnostics if diagnostics is not None else []
    base = {name.lower(): value for name, value in (headers or {}).items()}
    last_id: str | None = base.pop("last-event-id", None)
    retry_ms = DEFAULT_RETRY_MS
    reconnects = 0
    own_client = client is None
    http = client or httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))
    try:
        async with asyncio.timeout(timeout):
            while True:
                sent = dict(base)
                if last_id:
                    sent["last-event-id"] = last_id
                log.append({"connection": reconnects + 1, "last-event-id": last_id})
                try:
                    async with aconnect_sse(http, "POST", url, json=body, headers=sent) as source:
                        response = source.response
                        kind = response.headers.get("content-type", "")
                        if response.status_code != 200 or not kind.startswith("text/event-stream"):
                            await response.aread()
                            failure = {"status": response.status_code, "body": _body(response)}
                            if response.status_code < 500:
                                return [*events, failure]
                            raise _Retry(f"retrying {failure}")
                        async for sse in source.aiter_sse():
                            if sse.retry is not None:
                                retry_ms = sse.retry
                            if sse.id:
                                last_id = sse.id
                            if sse.data == "":
                                continue
                            events.append({"id": sse.id, "event": sse.event, "data": sse.data})
                            if sse.event in LAST_EVENTS:
                                return events
                    raise _Retry("the stream ended before done")
                except (httpx.TransportError, _Retry) as error:
                    reconnects += 1
                    log.append(
                        {"error": f"{type(error).__name__}: {error}", "reconnect": reconnects}
                    )
                    if reconnects > max_reconnects:
                        raise ClientFailed(
                            f"more than {max_reconnects} reconnects; events so far: {events}"
                        ) from error
                    await asyncio.sleep(retry_ms / 1000)
    except TimeoutError as error:
        raise TimeoutError(f"no done/error within {timeout} s; events so far: {events}") from error
    finally:
        if own_client:
            await http.aclose()


class _Retry(Exception):
    """A response to retry: a 5xx, or a stream that ended before its last event."""
