"""Real servers for the system tests: Redis, HAProxy, a connection-cutting proxy, uvicorn.

The resumable-run tests (issue 15) have to show that a run survives what
happens to it in production: a replica behind a load balancer dies, Redis is
killed and comes back, the network drops a stream in the middle. Mocks would
only show that the code agrees with the mock, so these helpers run the real
thing on loopback, each on a free port, each a context manager that always
cleans up after itself (processes stopped, temporary folders removed), so that
a pytest fixture is one ``with`` statement:

- :class:`RedisServer`: a throwaway ``redis-server`` that can be killed and
  started again on the same port.
- :class:`HAProxy`: ``haproxy`` round-robin over some backends, health-checked
  on ``/readyz``, with the timeouts an SSE stream needs.
- :class:`CuttingProxy`: a TCP proxy that cuts a connection abruptly right
  after it has forwarded the K-th SSE event, to make clients reconnect at a
  known point.
- :class:`UvicornThread`: an ASGI app served by uvicorn in a thread, for small
  stand-in backends written inside a test.

Every wait has a timeout; every process is started with ``PR_SET_PDEATHSIG``
(see :mod:`dspy_forge.dev.devserver`, note 2) so that it dies with the test
process even if that one is killed.
"""

from __future__ import annotations

import array
import asyncio
import collections
import contextlib
import fcntl
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx
import redis
import uvicorn
from redis.backoff import NoBackoff
from redis.retry import Retry

from dspy_forge.dev.devserver import _death_signal, free_port

LOOPBACK = "127.0.0.1"


class _Managed:
    """``with`` support for the helpers: ``start()`` on entry, ``close()`` on exit."""

    def start(self) -> Self:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM ``process``, SIGKILL it if it is still there ``timeout`` seconds later."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def _executable(name: str) -> str:
    """``name`` on PATH, or in the sbin folders Debian installs daemons in (not on every PATH)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin")
    if found is None:
        raise FileNotFoundError(f"{name} is not installed (.ci/run installs it)")
    return found


def _tail(path: Path, size: int = 4000) -> str:
    """The end of a log file, to put in an error message (empty if it is not there)."""
    try:
        return path.read_bytes()[-size:].decode(errors="replace")
    except OSError:
        return ""


# --------------------------------------------------------------------------- Redis


class RedisServer(_Managed):
    """A ``redis-server`` of its own on a loopback port, without persistence.

    Nothing is saved (``--save ""``, ``--appendonly no``), so a killed server
    comes back empty, which is what "Redis lost everything" tests need; the
    port stays the same across :meth:`kill` and :meth:`start`, so a service
    started with :attr:`url` reconnects to the new server by itself.

    ``with RedisServer() as server:`` starts it and stops it (and removes its
    folder) at the end, however the block ends.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        executable: str = "redis-server",
        startup_timeout: float = 10.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.host = LOOPBACK
        self.port = port if port is not None else free_port(LOOPBACK)
        self.executable = executable
        self.startup_timeout = startup_timeout
        self.extra_args = tuple(extra_args)
        self.directory = Path(tempfile.mkdtemp(prefix="redis-server-"))
        self.log_path = self.directory / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``, for ``REDIS_URL``."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the process is alive (not whether it answers)."""
        return self.process is not None and self.process.poll() is None

    def client(self) -> redis.Redis:
        """A sync client of this server (the caller closes it), to look at what a service stored."""
        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)

    def start(self) -> Self:
        """Start the server (again, on the same port) and wait until it answers PING.

        Raises:
            RuntimeError: it is already running, it exited, or it did not answer in time.
        """
        if self.running:
            raise RuntimeError(f"redis-server is already running on port {self.port}")
        command = [
            _executable(self.executable),
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--daemonize",
            "no",
            "--logfile",
            "",
            *self.extra_args,
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_death_signal(),
            )
        self._await_ping()
        return self

    def _await_ping(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        client = redis.Redis(  # no retries of its own: this loop is the retry
            host=self.host,
            port=self.port,
            socket_timeout=1,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"redis-server exited with {self.process.returncode} while starting:\n"
                        + _tail(self.log_path)
                    )
                with contextlib.suppress(redis.RedisError):
                    if client.ping():
                        return
                time.sleep(0.02)
        finally:
            client.close()
        raise RuntimeError(
            f"redis-server did not answer PING on port {self.port} within "
            f"{self.startup_timeout} s:\n" + _tail(self.log_path)
        )

    def stop(self) -> None:
        """Stop it politely (SIGTERM), as an operator restarting Redis would."""
        if self.process is not None:
            _stop_process(self.process)

    def kill(self) -> None:
        """SIGKILL it: Redis crashed (its data is gone, it saves nothing)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def close(self) -> None:
        """Stop it if it runs and remove its folder."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


# --------------------------------------------------------------------------- HAProxy


class HAProxy(_Managed):
    """``haproxy`` in front of some HTTP backends: round-robin, health-checked, no buffering.

    It stands for the load balancer in front of several replicas of a
    service. The configuration is what SSE needs behind a real balancer:

    - ``balance roundrobin``, so consecutive requests go to different replicas
      (a resumed stream lands on another one than the one that started it);
    - ``option httpchk GET /readyz`` every ``check_interval_ms`` with
      ``fall 2 rise 1``, so a replica whose ``/readyz`` fails (or that died)
      leaves the rotation within about two intervals and comes back after one
      good check;
    - ``timeout client``/``server``/``tunnel`` of ``stream_timeout`` (5 min),
      so a quiet stream is not cut by the balancer;
    - ``option http-server-close``: one backend connection per request, and
      responses are streamed as they come (HAProxy buffers no response body
      unless compression or ``http-buffer-request`` is configured; neither is);
    - ``retries 2`` with ``option redispatch``: a request whose backend
      refuses the connection (a replica just killed, not yet marked down) is
      sent to another one. Only connection failures are retried, never a
      request that reached a backend.

    It runs as the current user on an unprivileged port with ``-db`` (no
    daemon), with an admin socket in its own folder, read by
    :meth:`server_states`.
    """

    def __init__(
        self,
        backends: Sequence[str],
        *,
        check_path: str = "/readyz",
        check_interval_ms: int = 500,
        fall: int = 2,
        rise: int = 1,
        stream_timeout: str = "5m",
        executable: str = "haproxy",
        startup_timeout: float = 10.0,
        wait_for_up: int | None = None,
    ) -> None:
        """Set up (not start) a balancer over ``backends``, URLs ``http://127.0.0.1:PORT``.

        ``wait_for_up``: how many backends :meth:`start` waits to see pass a
        health check (default: all of them; 0 waits only for the port).
        """
        if not backends:
            raise ValueError("HAProxy needs at least one backend")
        self.backends = list(backends)
        self.server_names = [f"s{i}" for i in range(len(self.backends))]
        self.check_path = check_path
        self.check_interval_ms = check_interval_ms
        self.fall = fall
        self.rise = rise
        self.stream_timeout = stream_timeout
        self.executable = executable
        self.startup_timeout = startup_timeout
        self.wait_for_up = len(self.backends) if wait_for_up is None else wait_for_up
        self.host = LOOPBACK
        self.port = free_port(LOOPBACK)
        self.directory = Path(tempfile.mkdtemp(prefix="haproxy-"))
        self.config_path = self.directory / "haproxy.cfg"
        self.socket_path = self.directory / "admin.sock"
        self.log_path = self.directory / "haproxy.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The frontend, ``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    def config(self) -> str:
        """The configuration file's text."""
        servers = []
        for name, backend in zip(self.server_names, self.backends, strict=True):
            parts = urlsplit(backend)
            if parts.scheme != "http" or not parts.hostname or not parts.port:
                raise ValueError(f"backend {backend!r} is not http://HOST:PORT")
            servers.append(f"    server {name} {parts.hostname}:{parts.port} check")
        interval = f"{self.check_interval_ms}ms"
        return "\n".join(
            [
                "global",
                "    maxconn 4096",
                f"    stats socket {self.socket_path} mode 600 level admin",
                "",
                "defaults",
                "    mode http",
                "    timeout connect 2s",
                f"    timeout client {self.stream_timeout}",
                f"    timeout server {self.stream_timeout}",
                f"    timeout tunnel {self.stream_timeout}",
                "    timeout http-request 10s",
                "    timeout http-keep-alive 10s",
                "    timeout queue 10s",
                "    option http-server-close",
                "    retries 2",
                "    option redispatch",
                "",
                "frontend fe",
                f"    bind {self.host}:{self.port}",
                "    default_backend be",
                "",
                "backend be",
                "    balance roundrobin",
                f"    option httpchk GET {self.check_path}",
                "    http-check expect status 200",
                f"    default-server inter {interval} fastinter {interval} downinter {interval}"
                f" fall {self.fall} rise {self.rise}",
                *servers,
                "",
            ]
        )

    def start(self) -> Self:
        """Write the configuration, start ``haproxy -db``, wait until it listens and forwards.

        Raises:
            RuntimeError: the configuration is refused, haproxy exited, or it
                was not ready within ``startup_timeout``.
        """
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("haproxy is already running")
        self.config_path.write_text(self.config())
        executable = _executable(self.executable)
        checked = subprocess.run(
            [executable, "-c", "-f", str(self.config_path)],
            capture_output=True,
            timeout=30,
            check=False,
        )
        if checked.returncode != 0:
            raise RuntimeError(
                "haproxy refused its configuration:\n"
                + checked.stdout.decode(errors="replace")
                + checked.stderr.decode(errors="replace")
            )
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [executable, "-db", "-f", str(self.config_path)],
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_death_signal(),
            )
        self._await_ready()
        return self

    def _await_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout

        def check_alive() -> None:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"haproxy exited with {self.process.returncode} while starting:\n"
                    + _tail(self.log_path)
                )

        while True:
            check_alive()
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"haproxy did not listen on {self.port}:\n{_tail(self.log_path)}"
                )
            time.sleep(0.02)
        if self.wait_for_up == 0:
            return
        while True:
            check_alive()
            with contextlib.suppress(OSError):
                rows = self._stat_rows()
                checked = [
                    r for r in rows.values() if r["status"] == "UP" and r["check_status"] == "L7OK"
                ]
                if len(checked) >= self.wait_for_up:
                    with contextlib.suppress(httpx.HTTPError):
                        if httpx.get(self.url + self.check_path, timeout=2).status_code == 200:
                            return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"haproxy had not {self.wait_for_up} backend(s) up and forwarding within "
                    f"{self.startup_timeout} s (states: {self._states_or_error()}):\n"
                    + _tail(self.log_path)
                )
            time.sleep(0.05)

    def _states_or_error(self) -> str:
        try:
            return repr(self.server_states())
        except OSError as error:
            return repr(error)

    def command(self, line: str) -> str:
        """Send one command to the admin socket (``show stat``, ``disable server be/s0`` ...)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket_path))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def server_states(self) -> dict[str, str]:
        """Each backend server's health as HAProxy sees it: ``{"s0": "UP", "s1": "DOWN"}``.

        Server ``s<i>`` is ``backends[i]``. A state is HAProxy's ``status``
        column: ``UP``, ``DOWN``, ``UP 1/2`` (going down), ``MAINT`` ...
        """
        return {name: row["status"] for name, row in self._stat_rows().items()}

    def _stat_rows(self) -> dict[str, dict[str, str]]:
        """``show stat`` of the backend's servers, by name, each row by column name."""
        lines = self.command("show stat").splitlines()
        if not lines or not lines[0].startswith("# "):
            raise OSError(f"unexpected answer to show stat: {lines[:2]!r}")
        header = lines[0][2:].split(",")
        rows = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("pxname") == "be" and row.get("svname") in self.server_names:
                rows[row["svname"]] = row
        return rows

    def wait_for_states(self, expected: dict[str, str], timeout: float = 10.0) -> None:
        """Wait until the named servers are in the given states (``{"s1": "DOWN"}``).

        Raises:
            TimeoutError: they were not within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = self.server_states()
            if all(states.get(name) == state for name, state in expected.items()):
                return
            time.sleep(0.05)
        raise TimeoutError(f"haproxy servers are {states}, not {expected}, after {timeout} s")

    def stop(self) -> None:
        """Stop haproxy (SIGTERM: it closes every connection at once)."""
        if self.process is not None:
            _stop_process(self.process)

    def close(self) -> None:
        """Stop it if it runs and remove its folder."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


# --------------------------------------------------------------------------- CuttingProxy

_LINE_END = re.compile(rb"\r\n|\r|\n")
# Fields whose frame is an event a client acts on: a frame of comments only
# (``: ping``) or of ``retry:`` only is not counted.
_EVENT_FIELDS = frozenset({b"data", b"event", b"id"})
_HEAD_LIMIT = 1 << 20


class SSEEventCounter:
    """Counts complete SSE events in a ``text/event-stream`` body fed to it in pieces.

    A frame ends at a blank line (``\\n``, ``\\r\\n`` or ``\\r`` line ends, as
    the SSE spec allows, split anywhere between pieces). It counts as an event
    when it has a ``data``, ``event`` or ``id`` field: a frame of comments only
    (a keep-alive ``: ping``) or of ``retry:`` only is what a client never sees
    as an event, so it is not counted.
    """

    def __init__(self) -> None:
        self.events = 0
        self.pending = False
        self._line = bytearray()
        self._after_cr = False
        self._counts = False

    def feed(self, data: bytes, stop_at: int | None = None) -> int | None:
        """Count the events in ``data``; the offset just past event ``stop_at``'s frame, if in it.

        When the ``stop_at``-th event (counted from the first byte ever fed)
        completes inside ``data``, returns the offset right after its
        terminating blank line, and what follows it in ``data`` is not looked
        at; otherwise returns None.

        A frame whose blank line ends in a ``\\r`` that is the last byte of
        ``data`` may be ending in a ``\\r\\n`` split between two pieces, and
        some clients (httpx-sse) wait for the byte after a ``\\r``: then
        :attr:`pending` is set, None is returned, and the next piece decides (0,
        or 1 for its ``\\n``). At the end of the body, :attr:`pending` means
        cut there.
        """
        if self.pending:
            return 1 if data[:1] == b"\n" else 0
        position = 0
        if self._after_cr and data[:1] == b"\n":
            position = 1  # the \n of a \r\n split between two pieces
        self._after_cr = False
        for match in _LINE_END.finditer(data, position):
            self._line += data[position : match.start()]
            position = match.end()
            if self._end_line():
                self.events += 1
                if stop_at is not None and self.events >= stop_at:
                    if match.group() == b"\r" and position == len(data):
                        self.pending = True
                        return None
                    return position
        self._line += data[position:]
        self._after_cr = data.endswith(b"\r")
        return None

    def _end_line(self) -> bool:
        """Take the line just ended; whether it ended a frame that counts."""
        line = bytes(self._line)
        self._line.clear()
        if not line:
            counts, self._counts = self._counts, False
            return counts
        if not line.startswith(b":"):
            name = line.split(b":", 1)[0]
            if name in _EVENT_FIELDS:
                self._counts = True
        return False


class _Cut(Exception):
    """Raised inside a connection's response pump once it must be cut."""


class _Head:
    """A parsed HTTP/1.1 message head (request or response)."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        lines = raw.split(b"\r\n")
        self.start = lines[0].split(b" ", 2)
        if len(self.start) < 2:
            raise ValueError(f"not an HTTP message head: {lines[0]!r}")
        self.headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(b":")
            if not sep:
                raise ValueError(f"not a header line: {line!r}")
            key = name.strip().lower()
            value = value.strip()
            self.headers[key] = self.headers[key] + b", " + value if key in self.headers else value

    def body_framing(self) -> tuple[str, int]:
        """("chunked", 0), ("length", n) or ("close", 0): how the body after this head ends."""
        coding = self.headers.get(b"transfer-encoding", b"").lower()
        if coding and coding.split(b",")[-1].strip() == b"chunked":
            return "chunked", 0
        if coding:
            return "close", 0
        if b"content-length" in self.headers:
            return "length", int(self.headers[b"content-length"].split(b",")[0])
        return "close", 0


class CuttingProxy(_Managed):
    """A loopback TCP proxy that cuts a connection right after its K-th SSE event.

    It plays the network that drops a stream: put it between a client and a
    service (or HAProxy), and connection ``i`` (0, 1, 2 ... in the order they
    are accepted) is cut after it has forwarded the ``cut_after(i)``-th event
    of the server's SSE responses on that connection (``None``: never cut;
    ``0``: right after the first ``text/event-stream`` response head). It
    forwards exactly up to and including that event's terminating blank line
    and then closes both sides abruptly (TCP RST), so the client has seen
    exactly K events on that connection and then a broken stream, and must
    reconnect with ``Last-Event-ID``.

    Events are counted on the de-chunked payload of ``text/event-stream``
    responses (HTTP/1.1, as uvicorn and HAProxy send them: chunked, with a
    ``Content-Length`` or until close), by :class:`SSEEventCounter`, which
    skips ``retry:``-only and comment-only frames. When event K ends inside a
    chunk, the chunk is split there and re-encoded, so the client gets a
    well-formed chunk holding exactly the K events' bytes before the cut; all
    other bytes go through as they came. The RST goes out only once the
    client's kernel has acknowledged every byte (``TIOCOUTQ`` is 0, bounded by
    ``flush_timeout``), because a reset discards unsent data: the K-th event
    really arrives.

    It runs in a thread with its own event loop, so sync and async tests alike
    can use it (``cut_after`` is called in that thread, once per connection).
    :attr:`connections`, :attr:`cuts` and :attr:`events` (events forwarded on
    each connection, by index) tell what happened.
    """

    def __init__(
        self,
        target: str,
        cut_after: Callable[[int], int | None] | None = None,
        *,
        cut_request: Callable[[int, dict[bytes, bytes]], int | None] | None = None,
        flush_timeout: float = 5.0,
    ) -> None:
        """Set up (not start) a proxy to ``target``: ``http://HOST:PORT`` or ``HOST:PORT``."""
        parts = urlsplit(target if "://" in target else f"tcp://{target}")
        if not parts.hostname or not parts.port:
            raise ValueError(f"target {target!r} is not HOST:PORT")
        self.target_host: str = parts.hostname
        self.target_port: int = parts.port
        self.cut_after: Callable[[int], int | None] = cut_after or (lambda index: None)
        # Instead of cut_after: K from the connection's first request (its index and headers,
        # names lower-case), e.g. to cut only requests that are not resumes (no Last-Event-ID).
        self.cut_request = cut_request
        self.flush_timeout = flush_timeout
        self.host = LOOPBACK
        self.port = 0
        self.connections = 0
        self.cuts = 0
        self.events: list[int] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """The proxy, ``http://127.0.0.1:PORT`` (meaningful once started)."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Start listening on a free loopback port, in a thread of its own."""
        if self._thread is not None:
            raise RuntimeError("the proxy is already running")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run, args=(loop, ready), name="CuttingProxy", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the cutting proxy did not start within 10 s")
        if self._server is None:
            raise RuntimeError("the cutting proxy could not listen")
        return self

    def _run(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._accept, self.host, 0, limit=_HEAD_LIMIT)
            )
            self.port = int(self._server.sockets[0].getsockname()[1])
        finally:
            ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def close(self) -> None:
        """Stop listening, drop every open connection, end the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            with contextlib.suppress(Exception):
                future.result(10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._loop = self._thread = None

    stop = close

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._connection(client_reader, client)
        except asyncio.CancelledError:
            pass  # the proxy is closing; asyncio would log a connection task that ends cancelled
        finally:
            self._tasks.discard(task)

    async def _connection(
        self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        index = self.connections
        self.connections += 1
        self.events.append(0)
        first_request: dict[str, dict[bytes, bytes]] = {}
        stop_at = None if self.cut_request is not None else self.cut_after(index)
        try:
            server_reader, server = await asyncio.open_connection(
                self.target_host, self.target_port, limit=_HEAD_LIMIT
            )
        except OSError:
            _reset(client)
            return
        methods: collections.deque[bytes] = collections.deque()
        upstream = asyncio.create_task(
            self._requests(client_reader, server, methods, first_request)
        )
        counter = SSEEventCounter()
        try:
            if self.cut_request is not None:
                await self._responses(
                    server_reader, client, methods, counter, None, index, first_request
                )
            else:
                await self._responses(server_reader, client, methods, counter, stop_at, index)
        except _Cut:
            self.cuts += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_timeout):
                    await _flushed(client)
            _reset(client)
            _reset(server)
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            _reset(client)  # a peer vanished mid-message, or the bytes are not HTTP/1.1
            _reset(server)
        else:
            with contextlib.suppress(OSError):
                await client.drain()
            client.close()
            server.close()
        finally:
            upstream.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await upstream
            for writer in (client, server):
                if not writer.transport.is_closing():  # cancelled: the proxy is closing
                    _reset(writer)
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    async def _requests(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        methods: collections.deque[bytes],
        first_request: dict[str, dict[bytes, bytes]] | None = None,
    ) -> None:
        """Client to server: forward requests as they are, noting each one's method."""
        try:
            while True:
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError as error:
                    writer.write(error.partial)
                    break
                head = _Head(raw)
                method = head.start[0].upper()
                methods.append(method)
                if first_request is not None:
                    first_request.setdefault("headers", head.headers)
                writer.write(raw)
                if method == b"CONNECT" or b"upgrade" in head.headers:
                    await _pipe(reader, writer)
                    break
                kind, length = head.body_framing()
                if kind == "close" and b"transfer-encoding" not in head.headers:
                    kind = "length"  # a request without a length has no body
                await _forward_body(reader, writer, kind, length, None)
                await writer.drain()
            await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.transport.abort()

    async def _responses(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        methods: collections.deque[bytes],
        counter: SSEEventCounter,
        stop_at: int | None,
        index: int,
        first_request: dict[str, dict[bytes, bytes]] | None = None,
    ) -> None:
        """Server to client: forward responses, counting SSE events, until the cut or EOF."""
        while True:
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as error:
                writer.write(error.partial)
                return
            head = _Head(raw)
            status = int(head.start[1])
            if first_request is not None and self.cut_request is not None:
                # The request was read before its response came: decide on it now, once.
                stop_at = self.cut_request(index, first_request.get("headers", {}))
                first_request = None
            informational = 100 <= status < 200 and status != 101
            method = methods[0] if methods else b"GET"
            if not informational and methods:
                methods.popleft()
            writer.write(raw)
            await writer.drain()
            if status == 101 or (method == b"CONNECT" and 200 <= status < 300):
                await _pipe(reader, writer)
                return
            if informational or method == b"HEAD" or status in (204, 304):
                continue
            content_type = head.headers.get(b"content-type", b"").lower()
            sse = content_type.startswith(b"text/event-stream")
            if sse and stop_at is not None and counter.events >= stop_at:
                raise _Cut
            kind, length = head.body_framing()
            count = self._counting(counter, stop_at, index) if sse else None
            await _forward_body(reader, writer, kind, length, count)
            if kind == "close":
                return

    def _counting(
        self, counter: SSEEventCounter, stop_at: int | None, index: int
    ) -> Callable[[bytes], int | None]:
        """The ``count`` of :func:`_forward_body` for an SSE body: feeds ``counter``."""

        def count(data: bytes) -> int | None:
            cut = counter.feed(data, stop_at)
            self.events[index] = counter.events
            return cut

        return count


async def _forward_body(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    kind: str,
    length: int,
    count: Callable[[bytes], int | None] | None,
) -> None:
    """Forward one message body framed as ``kind``; raise :class:`_Cut` where ``count`` says.

    ``count`` gets the payload (de-chunked) piece by piece and answers an
    offset to cut after, or None. Chunks are forwarded as they came, except the
    one holding the cut, which is re-encoded as a chunk of the bytes up to it.
    """
    if kind == "length":
        remaining = length
        while remaining:
            data = await reader.read(min(remaining, 65536))
            if not data:
                raise asyncio.IncompleteReadError(b"", remaining)
            remaining -= len(data)
            _write_cut(writer, data, count)
            await writer.drain()
        _cut_if_pending(count)
    elif kind == "close":
        while data := await reader.read(65536):
            _write_cut(writer, data, count)
            await writer.drain()
        _cut_if_pending(count)
    else:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                _cut_if_pending(count)
                writer.write(size_line)
                while True:  # trailers, up to the blank line
                    line = await reader.readuntil(b"\r\n")
                    writer.write(line)
                    if line == b"\r\n":
                        break
                await writer.drain()
                return
            data = await reader.readexactly(size)
            crlf = await reader.readexactly(2)
            cut = count(data) if count is not None else None
            if cut is None:
                writer.write(size_line + data + crlf)
                await writer.drain()
            else:
                if cut:  # a chunk of size 0 would end the body cleanly
                    writer.write(b"%x\r\n%s\r\n" % (cut, data[:cut]))
                raise _Cut


def _cut_if_pending(count: Callable[[bytes], int | None] | None) -> None:
    """At the end of a body: raise :class:`_Cut` if the counter's last event awaited a byte."""
    if count is not None and count(b"") is not None:
        raise _Cut


def _write_cut(
    writer: asyncio.StreamWriter, data: bytes, count: Callable[[bytes], int | None] | None
) -> None:
    """Write ``data``, or only its part up to the cut ``count`` finds, then raise :class:`_Cut`."""
    cut = count(data) if count is not None else None
    writer.write(data if cut is None else data[:cut])
    if cut is not None:
        raise _Cut


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Forward bytes as they are until EOF (an upgraded connection)."""
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


async def _flushed(writer: asyncio.StreamWriter) -> None:
    """Wait until the peer's kernel has acknowledged everything written (the caller bounds it).

    A TCP reset drops whatever is still unsent or unacknowledged, so the cut
    waits for the transport's buffer and the socket's send queue to be empty.
    """
    transport = writer.transport
    sock = writer.get_extra_info("socket")
    linux = sock is not None and sys.platform.startswith("linux")
    while not transport.is_closing():
        if transport.get_write_buffer_size() == 0:
            if not linux:
                await asyncio.sleep(0.05)  # no way to ask the kernel: give it a moment
                return
            queued = array.array("i", [0])
            try:
                fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, queued)
            except OSError:
                return
            if queued[0] == 0:
                return
        await asyncio.sleep(0.001)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close a connection abruptly: a TCP RST, not an orderly FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# --------------------------------------------------------------------------- uvicorn


class UvicornThread(_Managed):
    """An ASGI app served by uvicorn in a background thread on a free loopback port.

    For stand-in backends written inside a test (a tiny Starlette app): no
    subprocess to start, the app's state is the test's to look at. Real
    generated services run in a subprocess instead
    (:func:`dspy_forge.dev.devserver.running_service`), where they can be
    killed like a replica.
    """

    def __init__(self, app: Any, *, port: int | None = None, startup_timeout: float = 10.0) -> None:
        self.app = app
        self.host = LOOPBACK
        self.port = port if port is not None else free_port(LOOPBACK)
        self.startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Serve the app and wait until uvicorn has started (or failed)."""
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._server = server = uvicorn.Server(config)
        self._thread = threading.Thread(target=server.run, name="UvicornThread", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"uvicorn did not start on port {self.port}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start within {self.startup_timeout} s")
            time.sleep(0.01)
        return self

    def close(self) -> None:
        """Ask uvicorn to exit (open streams get ``timeout_graceful_shutdown``), join the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
        self._server = self._thread = None

    stop = close
