"""`dspy-forge demo` as real processes: its servers die with it, and a busy port is an error.

Each test runs the command in a subprocess on a free loopback port (never 8000),
bounded in time, and afterwards ends any process the demo left behind by its id.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dspy_forge.dev.devserver import free_port
from tests.conftest import SPECS

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads process trees from /proc"
)

READY = "curl -N"  # the line the demo prints once it serves
TIMEOUT = 90.0


def demo_command(out: Path, port: int, spec: Path = SPECS / "qa.yaml") -> list[str]:
    return [
        sys.executable, "-m", "dspy_forge", "demo",
        "--spec", str(spec), "--out", str(out), "--port", str(port),
    ]  # fmt: skip


def children(pid: int) -> set[int]:
    """Every live descendant of ``pid``, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return {child for child in found if alive(child)}


def alive(pid: int) -> bool:
    """Running, not a zombie that nobody has reaped yet."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "zombie" not in state and "dead" not in state


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return bool(condition())  # type: ignore[operator]


class Demo:
    """``dspy-forge demo`` in a subprocess, its output read line by line."""

    def __init__(self, out: Path, port: int, spec: Path = SPECS / "qa.yaml") -> None:
        self.port = port
        self.process = subprocess.Popen(
            demo_command(out, port, spec),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
            start_new_session=True,  # a signal for the demo reaches only the demo
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.seen: set[int] = set()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def read_until(self, text: str, timeout: float = TIMEOUT) -> bool:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                return False
            self.lines.append(line)
            if text in line:
                return True
        return False

    def output(self) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=TIMEOUT)
        while True:
            try:
                line = self._queue.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
        return "".join(self.lines)

    def end(self) -> None:
        """Kill, by id, the demo and whatever it started that still runs."""
        leftovers = self.seen | children(self.process.pid)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        for pid in leftovers:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    started = Demo(tmp_path / "demo-service", free_port())
    try:
        yield started
    finally:
        started.end()


def serving(demo: Demo) -> set[int]:
    """Wait until the demo says it serves and it does; return its servers' process ids."""
    assert demo.read_until(READY), "".join(demo.lines)
    assert wait_for(lambda: healthy(demo.port), 60), "".join(demo.lines)
    servers = children(demo.process.pid)
    assert len(servers) >= 2, servers  # the fake LM and the service
    demo.seen = servers
    return servers


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_to_the_demo_stops_its_servers_and_frees_the_port(demo: Demo, signum: int) -> None:
    servers = serving(demo)

    demo.process.send_signal(signum)

    demo.process.wait(timeout=60)
    assert wait_for(lambda: not any(alive(pid) for pid in servers), 20), [
        pid for pid in servers if alive(pid)
    ]
    assert wait_for(lambda: port_is_free(demo.port), 20)
    # A stop that was asked for is a clean end.
    assert demo.process.returncode == 0, demo.output()


def test_sigkill_of_the_demo_still_ends_its_servers(demo: Demo) -> None:
    servers = serving(demo)

    demo.process.kill()
    demo.process.wait(timeout=30)

    assert wait_for(lambda: not any(alive(pid) for pid in servers), 20), [
        pid for pid in servers if alive(pid)
    ]
    assert wait_for(lambda: port_is_free(demo.port), 20)


class _OldServer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"an old server"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def test_a_port_in_use_is_an_error_before_anything_is_ready_or_written(tmp_path: Path) -> None:
    old = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OldServer)
    threading.Thread(target=old.serve_forever, daemon=True).start()
    port = old.server_address[1]
    out = tmp_path / "demo-service"
    try:
        result = subprocess.run(
            demo_command(out, port),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env={**os.environ, "COLUMNS": "200"},
            check=False,
        )
    finally:
        old.shutdown()
        old.server_close()
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert f"127.0.0.1:{port} is in use" in output
    assert "--port" in output
    assert READY not in output and f"generated {out}" not in output
    assert not out.exists()
