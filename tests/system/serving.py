"""Serving a generated project on the fake LM, for the system tests, and waiting on it.

Every system test that talks to a service over HTTP starts it the same way:
under uvicorn on a free port, its LM pointed at the session's fake LM (in a
failure scenario if the test wants one), its log captured in a file the test
can read. One home for that, so that a change to how services start is made once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from dspy_forge.dev.devserver import RunningService, fake_lm_env, running_service
from dspy_forge.dev.fakelm.testing import FakeLM


@contextmanager
def served(
    project: Path,
    package: str,
    fake_lm: FakeLM,
    log: Path,
    *,
    scenario: str | None = None,
    env: Mapping[str, str] | None = None,
    as_module: bool = False,
) -> Iterator[RunningService]:
    """Serve ``project`` on the fake LM (in ``scenario``) with ``env``; its log goes to ``log``."""
    api_base = fake_lm.scenario_base(scenario) if scenario else fake_lm.api_base
    with (
        log.open("wb") as sink,
        running_service(
            project,
            package,
            {**fake_lm_env(api_base), **(env or {})},
            log=sink,
            as_module=as_module,
        ) as service,
    ):
        yield service


def debug_stats(service: RunningService) -> dict[str, int]:
    """The service's ``/_debug/stats`` (it must run with ``DEBUG_STATS=true``)."""
    return httpx.get(f"{service.url}/_debug/stats", timeout=5).json()


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether ``condition()`` holds within ``timeout`` seconds, looking every 50 ms."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
