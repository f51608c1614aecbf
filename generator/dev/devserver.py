"""Run a generated project under uvicorn in a subprocess: for the demo, tests and benchmarks.

The project runs from its source folder (``PYTHONPATH=src``) with the current
interpreter, exactly as ``uvicorn PACKAGE.main:app`` would after ``pip install -e``.

Notes:
1. A server that must answer on a given port gets its socket from this process
   (:func:`listening_socket`, then ``sockets=`` of :func:`serving`), already
   bound and listening: a port in use is an error here, before anything runs,
   and whatever answers on the port afterwards is the server started, since
   nothing else can bind it while the socket is open. ``python -m
   dspy_forge.dev.devserver --fd N APP`` serves an ASGI app on such a socket; it
   goes through ``uvicorn.Server(...).run(sockets=...)``, because uvicorn's own
   ``--fd`` takes the socket for a Unix one and then leaves Nagle's algorithm
   on for every connection, which holds back the small writes of a stream.
2. ``die_with_parent=True`` makes the kernel kill the child when this process
   dies, however it dies, SIGKILL included (Linux: ``PR_SET_PDEATHSIG``). The
   signal comes when the *thread* that started the child ends, so start such
   children from the thread that lives as long as they should (the main one).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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


def listening_socket(host: str, port: int, *, backlog: int = 4096) -> socket.socket:
    """A socket bound to ``host:port`` and listening, to hand to a server (note 1).

    Raises:
        OSError: when the port is taken (``errno.EADDRINUSE``) or not allowed.
    """
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if os.name == "posix":  # reuse a port in TIME_WAIT; never one that listens
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def socket_url(sock: socket.socket) -> str:
    """``http://host:port`` of a listening socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def socket_command(target: str, fd: int, *extra: str) -> list[str]:
    """The command line serving the ASGI app ``module:attribute`` on the inherited socket ``fd``."""
    return [sys.executable, "-m", "dspy_forge.dev.devserver", "--fd", str(fd), target, *extra]


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


def service_command(
    package: str, host: str, port: int, *extra: str, python: str | None = None
) -> list[str]:
    """The uvicorn command line that serves ``package``."""
    return app_command(f"{package}.main:app", host, port, *extra, python=python)


def app_command(
    target: str, host: str, port: int, *extra: str, python: str | None = None
) -> list[str]:
    """The uvicorn command line that serves the ASGI app ``module:attribute``.

    ``python``: the interpreter, if not this one (the benchmarks compare Python versions).
    """
    return [
        python or sys.executable,
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
    health_path: str = "/healthz",
    sockets: Sequence[socket.socket] = (),
    die_with_parent: bool = False,
    name: str = "the service",
) -> Iterator[RunningService]:
    """Run ``command`` until ``url`` + ``health_path`` answers, for the ``with`` block; then stop.

    ``env`` is added to this process's environment. ``sockets`` are handed to the
    child, which serves on them, and closed here once it runs (note 1);
    ``die_with_parent`` ties the child's life to this process's (note 2).
    """
    fds = [sock.fileno() for sock in sockets]
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
        stdout=log,
        stderr=subprocess.STDOUT if log is not None else None,
        pass_fds=fds,
        preexec_fn=_death_signal() if die_with_parent else None,  # note 2
    )
    try:
        for sock in sockets:
            sock.close()  # the child's now: the port is free again once the child ends
        _await_health(url + health_path, process, startup_timeout, name)
        yield RunningService(url=url, process=process)
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Terminate ``process``, and kill it if it has not ended ``timeout`` seconds later."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _await_health(
    url: str, process: subprocess.Popen[bytes], timeout: float, name: str = "the service"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} while starting")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200 and process.poll() is None:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer at {url} within {timeout} s")


_PR_SET_PDEATHSIG = 1


def _death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel SIGKILL the child once this process dies (note 2).

    None where the kernel cannot (not Linux). Everything it calls is looked up
    here, before the fork, so that the child only makes two system calls.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    getppid, exit_now, kill = os.getppid, os._exit, int(signal.SIGKILL)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, kill, 0, 0, 0)
        if getppid() != parent:  # the parent died before the signal was set
            exit_now(1)

    return preexec


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dspy_forge.dev.devserver --fd N APP``: serve APP on an inherited socket.

    See note 1 of this module.
    """
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m dspy_forge.dev.devserver")
    parser.add_argument("--fd", type=int, required=True, help="a listening socket's descriptor")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("target", help="the ASGI app, module:attribute")
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    config = uvicorn.Config(args.target, access_log=False, log_level=args.log_level)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
