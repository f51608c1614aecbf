"""Start a fake LM in a subprocess for tests and benchmarks, and talk to its control endpoints.

A subprocess (rather than a thread) keeps the fake LM's event loop and CPU off the process
under test, so latency and throughput measurements of the service are not distorted, and it
is exactly what the demo command runs.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import httpx

from dspy_forge.dev.fakelm.launcher import READY_PREFIX

if TYPE_CHECKING:
    import dspy

__all__ = ["FakeLM", "running_fake_lm"]

_READY_URL = re.compile(r"(http://\S+)/v1\b")


@dataclass(frozen=True)
class FakeLM:
    """Handle on a running fake LM.

    Attributes:
        url: Root URL, e.g. ``http://127.0.0.1:40123``.
        process: The server process, when this handle started it.
    """

    url: str
    process: subprocess.Popen[str] | None = field(default=None, compare=False, repr=False)

    @property
    def api_base(self) -> str:
        """The OpenAI ``/v1`` base URL of the default scenario (what DSPy calls ``api_base``)."""
        return f"{self.url}/v1"

    def scenario_base(self, scenario: str) -> str:
        """The ``api_base`` selecting ``scenario``, e.g. ``"http-429"``, ``"delay-5ms+steps-2"``."""
        return f"{self.url}/s/{scenario}/v1"

    def lm(self, scenario: str | None = None, **kwargs: Any) -> dspy.LM:
        """A ``dspy.LM`` on this server (native engine, no cache); ``kwargs`` go to ``dspy.LM``."""
        import dspy

        api_base = self.scenario_base(scenario) if scenario else self.api_base
        options: dict[str, Any] = {"api_key": "fake", "cache": False, **kwargs}
        return dspy.LM("openai/fake-model", api_base=api_base, **options)

    def stats(self) -> dict[str, Any]:
        """The server's counters (see :mod:`dspy_forge.dev.fakelm.stats`)."""
        response = httpx.get(f"{self.url}/_fake/stats", timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def requests(self) -> list[dict[str, Any]]:
        """The last chat requests received, oldest first: scenario, messages and tools."""
        response = httpx.get(f"{self.url}/_fake/requests", timeout=10)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def prompts(self) -> list[str]:
        """The text of every message of the last chat requests, one string per request."""
        return [
            "\n".join(str(message.get("content")) for message in request["messages"])
            for request in self.requests()
        ]

    def reset(self) -> None:
        """Zero the server's counters and forget the requests it received."""
        httpx.post(f"{self.url}/_fake/reset", timeout=10).raise_for_status()

    async def astats(self) -> dict[str, Any]:
        """:meth:`stats` for async code."""
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"{self.url}/_fake/stats")
            response.raise_for_status()
            result: dict[str, Any] = response.json()
            return result

    async def areset(self) -> None:
        """:meth:`reset` for async code."""
        async with httpx.AsyncClient(timeout=10) as client:
            (await client.post(f"{self.url}/_fake/reset")).raise_for_status()


@contextlib.contextmanager
def running_fake_lm(
    *,
    scenario: str | None = None,
    host: str = "127.0.0.1",
    startup_timeout: float = 30.0,
) -> Iterator[FakeLM]:
    """Run ``python -m dspy_forge.dev.fakelm`` on a free loopback port for the ``with`` block.

    Waits until the server answers, yields a :class:`FakeLM`, then stops it (terminate, then
    kill). The server's stderr goes to this process's stderr.

    Args:
        scenario: Default scenario for the plain ``/v1`` path (``--scenario``).
        host: Interface to bind.
        startup_timeout: Seconds to wait for the server to answer.

    Raises:
        RuntimeError: if the server exits or does not answer in time.
    """
    command = [sys.executable, "-m", "dspy_forge.dev.fakelm", "--host", host, "--port", "0"]
    if scenario:
        command += ["--scenario", scenario]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        url = _await_ready_line(process, startup_timeout)
        fake = FakeLM(url=url, process=process)
        _await_answer(fake, process, startup_timeout)
        yield fake
    finally:
        _stop(process)


def _await_ready_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The root URL from the server's ready line; stdout keeps being drained afterwards."""
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"fake LM did not start within {timeout:g} s")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            raise RuntimeError(f"fake LM exited during start-up (status {process.wait()})")
        match = _READY_URL.search(line) if line.startswith(READY_PREFIX) else None
        if match:
            return match.group(1)


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _await_answer(fake: FakeLM, process: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"fake LM exited during start-up (status {process.returncode})")
        try:
            httpx.get(f"{fake.url}/_fake/stats", timeout=2).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"fake LM at {fake.url} did not answer within {timeout:g} s"
                ) from None
            time.sleep(0.05)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    if process.stdout is not None:
        process.stdout.close()
