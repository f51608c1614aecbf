"""The generated deploy/haproxy.cfg: valid, and it balances real replicas as compose runs them.

``haproxy -c`` checks the file as shipped (``init-addr none``: nothing is
resolved at check time). Then HAProxy runs on it with three changes only, so
that it works on loopback instead of a Docker network: it binds a free port
instead of ``:8000``, asks a small DNS server of this test instead of Docker's
(127.0.0.11), and the replicas, which that server gives as three addresses of
the name ``app``, listen on a free port instead of 8000. Two replicas are ready
and one is not (no LM key): HAProxy finds all three by DNS, sends requests to
the ready ones only, and forwards a stream's tokens as they are written.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from dspy_forge.dev.devserver import fake_lm_env, free_port, serving
from dspy_forge.dev.fakelm.testing import FakeLM

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
PACKAGE = "qa_service"
REPLICAS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
NOT_READY = "127.0.0.3"  # served without an LM key: /readyz answers 503
QUESTION = {"question": "What is the capital of France?"}


@pytest.fixture(scope="module")
def project(example_project: Callable[[str], Path]) -> Path:
    return example_project("qa")


@pytest.fixture(scope="module")
def shipped(project: Path) -> str:
    return (project / "deploy" / "haproxy.cfg").read_text("utf-8")


def check(config: Path) -> subprocess.CompletedProcess[str]:
    # -dW: a warning fails the check too.
    command = [HAPROXY, "-dW", "-c", "-f", str(config)]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def test_the_shipped_config_is_valid_without_warnings(project: Path) -> None:
    result = check(project / "deploy" / "haproxy.cfg")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration file is valid" in result.stdout + result.stderr


def test_a_broken_config_fails_the_check(shipped: str, tmp_path: Path) -> None:
    # The check above can fail: an unknown keyword in the same file is refused.
    broken = tmp_path / "haproxy.cfg"
    broken.write_text(shipped.replace("balance roundrobin", "balance no-such-algorithm"))
    assert check(broken).returncode != 0


# --- A DNS server that answers every A question with the replicas' addresses ------------


def dns_answer(query: bytes, addresses: tuple[str, ...]) -> bytes:
    """The response to ``query``: its question, and an A record per address if it asks for A."""
    ident, flags = struct.unpack("!HH", query[:4])
    end = 12
    while query[end]:  # the question's name, label by label
        end += 1 + query[end]
    qtype = struct.unpack("!H", query[end + 1 : end + 3])[0]
    question = query[12 : end + 5]
    records = addresses if qtype == 1 else ()
    header = struct.pack("!HHHHHH", ident, 0x8180 | (flags & 0x0100), 1, len(records), 0, 0)
    answers = b"".join(
        struct.pack("!HHHIH", 0xC00C, 1, 1, 5, 4) + socket.inet_aton(address) for address in records
    )
    return header + question + answers


@contextlib.contextmanager
def dns_server(addresses: tuple[str, ...]) -> Iterator[int]:
    """A UDP DNS server on loopback for the ``with`` block; yields its port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stopping = threading.Event()

    def serve() -> None:
        while not stopping.is_set():
            try:
                query, client = sock.recvfrom(4096)
            except TimeoutError:
                continue
            with contextlib.suppress(IndexError, struct.error):
                sock.sendto(dns_answer(query, addresses), client)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stopping.set()
        thread.join(timeout=5)
        sock.close()


# --- HAProxy on the shipped config, in front of three replicas ---------------------------


def on_loopback(shipped: str, frontend: int, dns: int, replicas: int) -> str:
    """The shipped config with its three Docker addresses moved to loopback ports."""
    changes = {
        "    bind :8000\n": f"    bind 127.0.0.1:{frontend}\n",
        "nameserver docker 127.0.0.11:53\n": f"nameserver docker 127.0.0.1:{dns}\n",
        " app:8000 ": f" app:{replicas} ",
    }
    for old, new in changes.items():
        assert shipped.count(old) == 1, f"the shipped config no longer has {old!r}"
        shipped = shipped.replace(old, new)
    return shipped


@contextlib.contextmanager
def replicas(project: Path, fake_lm: FakeLM, port: int, logs: Path) -> Iterator[dict[str, Path]]:
    """The service on each address of REPLICAS, one port, as `python -m` (the image's command)."""
    lm = fake_lm_env(fake_lm.scenario_base("delay-30ms"))
    logged: dict[str, Path] = {}
    with contextlib.ExitStack() as stack:
        for host in REPLICAS:
            env = {**lm, "PYTHONPATH": str(project / "src"), "HOST": host, "PORT": str(port)}
            env |= {"LOG_FORMAT": "json", "ACCESS_LOG": "true"}
            if host == NOT_READY:
                env |= {"LM_API_KEY": "", "OPENAI_API_KEY": ""}
            logged[host] = logs / f"{host}.log"
            sink = stack.enter_context(logged[host].open("wb"))
            command = [sys.executable, "-m", PACKAGE]
            url = f"http://{host}:{port}"
            stack.enter_context(serving(command, url, cwd=project, env=env, log=sink))
        yield logged


@contextlib.contextmanager
def haproxy(config: str, folder: Path) -> Iterator[Path]:
    path = folder / "haproxy.cfg"
    path.write_text(config)
    log = folder / "haproxy.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([HAPROXY, "-db", "-f", str(path)], stdout=sink, stderr=sink)
        try:
            yield log
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until_ready(url: str, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"no replica ready behind HAProxy in {timeout} s:\n{log.read_text()}")


def requests(log: Path) -> list[str]:
    """``METHOD /path`` of each request a replica's access log holds."""
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [
        f"{line['http']['method']} {line['http']['path']}"
        for line in lines
        if line.get("logger") == "access"
    ]


def token_times(client: httpx.Client) -> tuple[list[float], list[str]]:
    """When each token event of one stream arrived, and every event's type, in order."""
    times: list[float] = []
    events: list[str] = []
    with client.stream("POST", "/v1/qa/stream", json=QUESTION) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                events.append(line.removeprefix("event: "))
                if events[-1] == "token":
                    times.append(time.monotonic())
    return times, events


def test_haproxy_balances_the_ready_replicas_it_finds_by_dns_and_streams_unbuffered(
    project: Path, shipped: str, fake_lm: FakeLM, tmp_path: Path
) -> None:
    frontend, port = free_port(), free_port()
    url = f"http://127.0.0.1:{frontend}"
    with (
        replicas(project, fake_lm, port, tmp_path) as logs,
        dns_server(REPLICAS) as dns,
        haproxy(on_loopback(shipped, frontend, dns, port), tmp_path) as haproxy_log,
    ):
        wait_until_ready(url, haproxy_log)
        # Both ready replicas are up: each takes every other request.
        deadline = time.monotonic() + 20
        with httpx.Client(base_url=url, timeout=30) as client:
            while time.monotonic() < deadline:
                assert client.post("/v1/qa", json=QUESTION).status_code == 200
                served = [h for h in REPLICAS if "POST /v1/qa" in requests(logs[h])]
                if len(served) == 2:
                    break
                time.sleep(0.2)
            times, events = token_times(client)
    assert served == [h for h in REPLICAS if h != NOT_READY], {
        h: requests(log) for h, log in logs.items()
    }
    # The replica that is not ready was found (HAProxy checked it) and got no request
    # (its GET /healthz is the test's, waiting for it to start).
    assert set(requests(logs[NOT_READY])) == {"GET /healthz", "GET /readyz"}
    # Tokens came 30 ms apart from the LM and reached the client as they were written.
    assert events[-1] == "done" and len(times) >= 5
    assert times[-1] - times[0] >= 0.1, f"tokens arrived together: {times}"
