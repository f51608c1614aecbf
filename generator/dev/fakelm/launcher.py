"""Run the fake LM under uvicorn: the ``python -m dspy_forge.dev.fakelm`` command and ``serve()``.

Loopback by default: the fake LM is a test and demo double, not something to expose. The server
binds its socket before uvicorn starts so that port 0 works and the printed URL is the real one;
``--fd`` serves on a listening socket inherited from the parent instead (``dspy-forge demo``
binds it, so that it knows the URL and owns the port before the server starts).
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from collections.abc import Sequence

import uvicorn

from dspy_forge.dev.fakelm.scenario import ScenarioError, parse_scenario
from dspy_forge.dev.fakelm.server import ABORT_LOG_FILTER, create_app

__all__ = ["READY_PREFIX", "build_parser", "main", "serve"]

READY_PREFIX = "fake LM ready:"
"""Start of the line printed once the socket listens: ``fake LM ready: <api_base> (...)``."""


def serve(
    host: str = "127.0.0.1",
    port: int = 8001,
    scenario: str | None = None,
    *,
    log_level: str = "warning",
    fd: int | None = None,
) -> None:
    """Serve the fake LM until interrupted; prints one ready line with the DSPy ``api_base``.

    Args:
        host: Interface to bind; loopback unless you mean otherwise.
        port: TCP port; 0 picks a free one (the ready line tells which).
        scenario: Default scenario for the plain ``/v1`` path, e.g. ``delay-30ms``.
        log_level: uvicorn log level.
        fd: A listening socket to serve on, inherited from the parent; ``host`` and
            ``port`` are then not used, and no ready line is printed.

    Raises:
        ScenarioError: when ``scenario`` is not valid.
    """
    app = create_app(scenario)
    if fd is not None:
        sock = socket.socket(fileno=fd)
        host = sock.getsockname()[0]
    else:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(4096)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    api_base = f"http://{shown_host}:{bound_port}/v1"
    if fd is None:  # with fd, the parent bound the socket and knows the URL already
        print(
            f"{READY_PREFIX} {api_base} (scenario: {scenario or 'default'}; "
            f"dspy.LM('openai/fake-model', api_base='{api_base}', api_key='fake'))",
            flush=True,
        )
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        backlog=4096,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    # uvicorn configures logging in Config(); keep the on-purpose aborts out of its error log.
    logging.getLogger("uvicorn.error").addFilter(ABORT_LOG_FILTER)
    server.run(sockets=[sock])


def build_parser() -> argparse.ArgumentParser:
    """The command-line options of ``python -m dspy_forge.dev.fakelm``."""
    parser = argparse.ArgumentParser(
        prog="python -m dspy_forge.dev.fakelm",
        description="Serve a deterministic, OpenAI-compatible fake LM for DSPy (no API key).",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=8001, help="port; 0 picks a free one (default: 8001)"
    )
    parser.add_argument(
        "--scenario",
        default=None,
        help="default scenario for the plain /v1 path, e.g. delay-30ms or delay-20ms+words-60",
    )
    parser.add_argument(
        "--log-level", default="warning", help="uvicorn log level (default: warning)"
    )
    parser.add_argument(
        "--fd",
        type=int,
        default=None,
        help="serve on this inherited, listening socket instead of binding --host and --port",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m dspy_forge.dev.fakelm``; returns the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        parse_scenario(args.scenario)
    except ScenarioError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        serve(args.host, args.port, args.scenario, log_level=args.log_level, fd=args.fd)
    except OSError as error:
        print(f"error: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
