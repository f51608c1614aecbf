"""Run a generated project under uvicorn in a subprocess: for the demo, tests and benchmarks.

The project runs from its source folder (``PYTHONPATH=src``) with the current
interpreter, exactly as ``uvicorn PACKAGE.main:app`` would after ``pip install -e``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx


@dataclass(frozen=True)
class RunningService:
    """A generated service answering on loopback."""

    url: str
    process: subprocess.Popen[bytes]


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def fake_lm_env(api_base: str, own_lm_programs: Iterable[str] = ()) -> dict[str, str]:
    """Environment that points every program of a service at a fake LM.

    ``own_lm_programs`` names the programs whose spec gives them their own LM,
    which the service-wide ``LM_*`` variables do not replace.
    """
    env = {}
    for prefix in ("LM", *(f"{name.upper()}_LM" for name in own_lm_programs)):
        env |= {
            f"{prefix}_MODEL": "openai/fake-model",
            f"{prefix}_API_BASE": api_base,
            f"{prefix}_API_KEY": "fake",
        }
    return env


def service_command(package: str, host: str, port: int, *extra: str) -> list[str]:
    """The uvicorn command line that serves ``package``."""
    return app_command(f"{package}.main:app", host, port, *extra)


def app_command(target: str, host: str, port: int, *extra: str) -> list[str]:
    """The uvicorn command line that serves the ASGI app ``module:attribute``."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--host",
        host,
        "--port",
        str(port),
        "--no-access-log",
        *extra,
    ]


@contextlib.contextmanager
def running_service(
    project: Path,
    package: str,
    env: Mapping[str, str],
    *,
    host: str = "127.0.0.1",
    startup_timeout: float = 60.0,
    log: IO[bytes] | None = None,
    as_module: bool = False,
) -> Iterator[RunningService]:
    """Serve ``project`` on a free port for the ``with`` block, then stop it.

    ``log`` receives the server's stdout and stderr (default: this process's).
    ``as_module`` starts it as its container does, ``python -m PACKAGE`` with HOST
    and PORT in the environment, instead of through uvicorn's command line.
    """
    port = free_port(host)
    environment = {"PYTHONPATH": str(project / "src"), **env}
    if as_module:
        environment.update(HOST=host, PORT=str(port))
    command = [sys.executable, "-m", package] if as_module else service_command(package, host, port)
    with serving(
        command,
        f"http://{host}:{port}",
        cwd=project,
        env=environment,
        log=log,
        startup_timeout=startup_timeout,
    ) as service:
        yield service


@contextlib.contextmanager
def serving(
    command: list[str],
    url: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: IO[bytes] | None = None,
    startup_timeout: float = 60.0,
) -> Iterator[RunningService]:
    """Run ``command`` until ``url``/healthz answers, for the ``with`` block; then stop it.

    ``env`` is added to this process's environment.
    """
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        stdout=log,
        stderr=subprocess.STDOUT if log is not None else None,
    )
    try:
        _await_health(url, process, startup_timeout)
        yield RunningService(url=url, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _await_health(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with {process.returncode} while starting")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the service did not answer at {url} within {timeout} s")
