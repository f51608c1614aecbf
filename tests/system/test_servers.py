"""The resumable-run tests' own infrastructure, proven against stand-ins before it is relied on.

A broken helper would make a resumable-run test pass or fail for the wrong
reason, so each helper of :mod:`tests.system.servers` and
:mod:`tests.system.sse_clients` is shown here to do what it says, with real
processes on loopback and the small service of :mod:`tests.system.standin`:
Redis answers, dies and comes back on its port; HAProxy alternates between
backends and drops the one whose ``/readyz`` fails, without buffering a
stream; the cutting proxy cuts exactly after event K; and every client,
cut once per connection, ends with every event exactly once, in order.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.system.servers import CuttingProxy, HAProxy, RedisServer, SSEEventCounter, UvicornThread
from tests.system.sse_clients import NODE_SCRIPTS, httpx_sse_events, node_events
from tests.system.standin import StandIn, app, chunks, frame


@pytest.fixture
def standin() -> Iterator[tuple[StandIn, UvicornThread]]:
    """A fresh stand-in service of 10 events for one test."""
    state = StandIn(events=10)
    with UvicornThread(app(state)) as server:
        yield state, server


def ids(events: list[dict[str, Any]]) -> list[Any]:
    """The events' ids, in order."""
    return [event.get("id") for event in events]


# --------------------------------------------------------------------------- Redis


def test_redis_answers_dies_and_comes_back_empty_on_the_same_port() -> None:
    """A "Redis crashed and restarted" test needs the same URL to work again, on an empty Redis."""
    import redis

    with RedisServer() as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = server.client()
        try:
            client.set("key", "value")
            assert client.get("key") == b"value"
            server.kill()
            assert not server.running
            with pytest.raises(redis.ConnectionError):
                client.ping()
            port = server.port
            started = time.monotonic()
            server.start()
            assert time.monotonic() - started < 5
            assert server.port == port
            assert client.ping()
            assert client.get("key") is None  # nothing was persisted
            server.stop()
            assert not server.running
            server.start()
            assert client.ping()
        finally:
            client.close()
    assert not server.running
    assert not server.directory.exists()


# --------------------------------------------------------------------------- HAProxy


def test_haproxy_round_robins_and_drops_a_backend_whose_readyz_fails() -> None:
    """Replica tests rely on consecutive requests changing replica, and /readyz taking one out."""
    first, second = StandIn(name="a"), StandIn(name="b")
    with (
        UvicornThread(app(first)) as a,
        UvicornThread(app(second)) as b,
        HAProxy([a.url, b.url]) as proxy,
    ):
        assert proxy.server_states() == {"s0": "UP", "s1": "UP"}
        served = [httpx.get(proxy.url + "/who", timeout=5).text for _ in range(6)]
        assert sorted(served) == ["a"] * 3 + ["b"] * 3
        assert all(x != y for x, y in itertools.pairwise(served))  # alternating

        second.ready = False
        started = time.monotonic()
        proxy.wait_for_states({"s1": "DOWN"}, timeout=5)
        assert time.monotonic() - started < 3  # fall 2 x inter 500 ms
        assert {httpx.get(proxy.url + "/who", timeout=5).text for _ in range(6)} == {"a"}

        second.ready = True
        proxy.wait_for_states({"s1": "UP"}, timeout=5)
        assert {httpx.get(proxy.url + "/who", timeout=5).text for _ in range(6)} == {"a", "b"}
    assert proxy.process is not None and proxy.process.poll() is not None
    assert not proxy.directory.exists()


def test_haproxy_forwards_a_stream_as_it_comes_and_a_backend_that_dies() -> None:
    """A balancer that buffered the stream, or kept routing to a dead replica, would hide bugs."""
    slow = StandIn(events=6, delay=0.15)
    with (
        UvicornThread(app(slow)) as a,
        UvicornThread(app(StandIn(name="b"))) as b,
        HAProxy([a.url, b.url]) as proxy,
    ):
        proxy.command("disable server be/s1")  # the stream goes to the slow one
        started = time.monotonic()
        arrivals = []
        with httpx.stream("POST", proxy.url + "/stream", json={}, timeout=10) as response:
            assert response.headers["x-served-by"] == "standin"
            for piece in response.iter_raw():
                if b"id: r-" in piece:
                    arrivals.append(time.monotonic() - started)
        total = time.monotonic() - started
        assert total > 1.0
        assert arrivals[0] < total / 2  # not held back until the stream ended

        proxy.command("enable server be/s1")
        proxy.wait_for_states({"s1": "UP"}, timeout=5)
        b.close()  # the replica dies: its check fails, the other takes everything
        proxy.wait_for_states({"s1": "DOWN"}, timeout=5)
        assert {httpx.get(proxy.url + "/who", timeout=5).text for _ in range(4)} == {"standin"}


# --------------------------------------------------------------------------- counting events


STREAM = (
    b"retry: 50\n\n"
    b": ping\n\n"
    b"id: r-1\nevent: token\ndata: one\n\n"
    b": a comment\n: two\n\n"
    b"id: r-2\r\ndata: crlf\r\n\r\n"
    b"retry: 10\r\n\r\n"
    b"data: cr\r\r"
    b"event: done\ndata: last\n\n"
)
ENDS = [
    STREAM.index(b"one\n\n") + 5,
    STREAM.index(b"crlf\r\n\r\n") + 8,
    STREAM.index(b"cr\r\r") + 4,
    len(STREAM),
]


@pytest.mark.parametrize("stop_at", [1, 2, 3, 4])
def test_the_counter_finds_the_end_of_event_k_however_the_stream_is_split(stop_at: int) -> None:
    """The cut point must not depend on where TCP or the server split the bytes."""
    for split in range(len(STREAM) + 1):
        counter = SSEEventCounter()
        offset = 0
        found = None
        for piece in (STREAM[:split], STREAM[split:]):
            if not piece:
                continue
            cut = counter.feed(piece, stop_at)
            if cut is not None:
                found = offset + cut
                break
            offset += len(piece)
        assert found == ENDS[stop_at - 1], split
    counter = SSEEventCounter()
    assert counter.feed(STREAM) is None
    assert counter.events == 4  # the retry: and comment frames are not events


def test_the_standin_sends_frames_whole_paired_and_split() -> None:
    """The stand-in must exercise every chunking the proxy and the clients have to handle."""
    body = chunks(0, 8, 50)
    assert body[0] == b"retry: 50\n\n"
    assert frame(1, 8) + b": ping\n\n" + frame(2, 8) in body
    assert frame(3, 8) not in body and frame(3, 8)[:9] in body
    assert frame(4, 8) in body


# --------------------------------------------------------------------------- CuttingProxy


def raw_stream(url: str, headers: dict[str, str] | None = None) -> tuple[bytes, Exception | None]:
    """The body bytes a plain client receives, and the error that ended it, if any."""
    received = b""
    try:
        with httpx.stream(
            "POST", url + "/stream", json={}, headers=headers or {}, timeout=10
        ) as response:
            for piece in response.iter_raw():
                received += piece
    except httpx.TransportError as error:
        return received, error
    return received, None


@pytest.mark.parametrize("k", [1, 2, 3, 5, 6, 9, 10])
def test_the_proxy_cuts_right_after_event_k(standin: tuple[StandIn, UvicornThread], k: int) -> None:
    """Exactly K events reach the client, wherever event K ends in the server's chunks."""
    state, server = standin
    with CuttingProxy(server.url, lambda index: k) as proxy:
        received, error = raw_stream(proxy.url)
    expected = b"".join(chunks(0, state.events, state.retry_ms))
    end = expected.index(frame(k, state.events)) + len(frame(k, state.events))
    assert received == expected[:end]  # up to and including event k's blank line, no more
    assert error is not None
    assert (proxy.connections, proxy.cuts, proxy.events) == (1, 1, [k])


def test_the_proxy_cuts_on_the_head_or_never(standin: tuple[StandIn, UvicornThread]) -> None:
    """K = 0 cuts before any event (a resume at the very start); None never cuts."""
    state, server = standin
    with CuttingProxy(server.url, lambda index: [0, None][index]) as proxy:
        received, error = raw_stream(proxy.url)
        assert received == b""
        assert isinstance(error, httpx.TransportError)
        received, error = raw_stream(proxy.url)
        assert error is None
        assert received == b"".join(chunks(0, state.events, state.retry_ms))
    assert (proxy.connections, proxy.cuts, proxy.events) == (2, 1, [0, 10])


def test_the_proxy_keeps_a_connection_alive_across_responses(
    standin: tuple[StandIn, UvicornThread],
) -> None:
    """Clients reuse connections: the proxy must frame every response, and count across them."""
    _, server = standin
    with CuttingProxy(server.url, lambda index: 12) as proxy, httpx.Client(timeout=10) as client:
        assert client.get(proxy.url + "/who").text == "standin"
        with client.stream("POST", proxy.url + "/stream", json={}) as response:
            assert response.read().endswith(frame(10, 10))
        assert client.get(proxy.url + "/who").text == "standin"
        with (
            client.stream("POST", proxy.url + "/stream", json={}) as response,
            pytest.raises(httpx.TransportError),
        ):
            response.read()  # events 11 and 12 of the connection: cut after the second
        assert (proxy.connections, proxy.cuts, proxy.events) == (1, 1, [12])


# --------------------------------------------------------------------------- clients


CLIENTS = [*NODE_SCRIPTS, "httpx_sse"]


def stream_with(
    name: str,
    url: str,
    headers: dict[str, str] | None = None,
    diagnostics: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Stream one run with the client ``name``, at most 20 s."""
    if name == "httpx_sse":
        return asyncio.run(
            httpx_sse_events(url, {"q": 1}, headers, timeout=20, diagnostics=diagnostics)
        )
    return node_events(name, url, {"q": 1}, headers, timeout=20, diagnostics=diagnostics)


@pytest.mark.parametrize("name", CLIENTS)
def test_a_client_cut_on_every_connection_gets_every_event_once(
    standin: tuple[StandIn, UvicornThread], name: str
) -> None:
    """Each client reconnects by itself with Last-Event-ID after every cut, losing nothing."""
    state, server = standin
    diagnostics: list[dict[str, Any]] = []
    with CuttingProxy(server.url, lambda index: 3) as proxy:
        events = stream_with(name, proxy.url + "/stream", diagnostics=diagnostics)
    assert ids(events) == [f"r-{n}" for n in range(1, 11)]
    assert [event["event"] for event in events] == ["token"] * 9 + ["done"]
    assert [json.loads(str(event["data"]))["n"] for event in events] == list(range(1, 11))
    assert [request["last_event_id"] for request in state.requests] == [None, "r-3", "r-6", "r-9"]
    assert all(json.loads(str(request["body"])) == {"q": 1} for request in state.requests)
    assert (proxy.connections, proxy.cuts, proxy.events) == (4, 3, [3, 3, 3, 1])
    assert [d["last-event-id"] for d in diagnostics if "connection" in d] == [
        None,
        "r-3",
        "r-6",
        "r-9",
    ]


@pytest.mark.parametrize("name", CLIENTS)
def test_a_client_resumes_from_a_given_id_and_stops_on_a_4xx(
    standin: tuple[StandIn, UvicornThread], name: str
) -> None:
    """A given Last-Event-ID is sent on the first request; a 4xx is final, not retried."""
    state, server = standin
    events = stream_with(name, server.url + "/stream", {"Last-Event-ID": "r-7"})
    assert ids(events) == ["r-8", "r-9", "r-10"]
    events = stream_with(name, server.url + "/stream", {"Last-Event-ID": "x-1"})
    assert events == [
        {"status": 404, "body": {"error": {"code": "run_not_found", "message": "no run x-1"}}}
    ]
    assert [request["last_event_id"] for request in state.requests] == ["r-7", "x-1"]


def test_a_client_cut_through_haproxy_resumes_on_either_replica() -> None:
    """The chain the replica tests use: client, cutting proxy, HAProxy, two replicas."""
    first, second = StandIn(name="a"), StandIn(name="b")
    with (
        UvicornThread(app(first)) as a,
        UvicornThread(app(second)) as b,
        HAProxy([a.url, b.url]) as balancer,
        CuttingProxy(balancer.url, lambda index: 2) as proxy,
    ):
        events = node_events("fetch_event_source", proxy.url + "/stream", {"q": 1}, timeout=20)
    assert ids(events) == [f"r-{n}" for n in range(1, 9)]
    assert events[-1]["event"] == "done"
    resumed = [request["last_event_id"] for request in first.requests + second.requests]
    assert sorted(resumed, key=str) == sorted([None, "r-2", "r-4", "r-6"], key=str)
    assert first.requests and second.requests  # round-robin: both replicas served the run
    assert (proxy.connections, proxy.cuts) == (4, 4)  # the last cut comes right after done
