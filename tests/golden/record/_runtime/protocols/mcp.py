"""MCP at ``/mcp``: the protocol's entry, and its endpoint, built on its first request.

The server itself (the programs as tools, the mapping of a run's events) is
``mcp_server.py``. Importing the ``mcp`` SDK takes about a third of the
service's start-up (it is the largest import after DSPy), and a service whose
clients never speak MCP would pay it on every start and every replica. So the
endpoint imports it on the first request to ``/mcp``: the first MCP call waits
for the import (once per process), nothing else does.

The SDK's session manager runs a task group for as long as it serves; an anyio
task group must be left in the task that entered it, so the manager runs in a
task of its own, started by the first request and stopped by the app's
lifespan at shutdown, never in a request's task.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from .base import Protocol

PATH = "/mcp"


class LazyEndpoint:
    """The ``/mcp`` endpoint: the SDK's ASGI app, made and started on the first request."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._endpoint: ASGIApp | None = None
        self._lock = asyncio.Lock()
        self._serving: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._endpoint is None:
            async with self._lock:  # concurrent first requests start one manager
                if self._endpoint is None:
                    self._endpoint = await self._start()
        await self._endpoint(scope, receive, send)

    async def _start(self) -> ASGIApp:
        from .mcp_server import asgi_app, session_manager

        manager = session_manager(self.app)
        running = asyncio.Event()

        async def serve() -> None:
            async with manager.run():  # entered and left in this task
                running.set()
                await self._stop.wait()

        self._serving = asyncio.create_task(serve(), name="mcp session manager")
        started = asyncio.create_task(running.wait())
        await asyncio.wait({started, self._serving}, return_when=asyncio.FIRST_COMPLETED)
        if not running.is_set():  # the manager failed to start: say why, on this request
            started.cancel()
            self._serving.result()
        return asgi_app(manager)

    async def close(self) -> None:
        """Stop the session manager, if a request started it."""
        if self._serving is None:
            return
        self._stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._serving


def _install(app: FastAPI) -> None:
    app.state.mcp = LazyEndpoint(app)
    app.router.add_route(PATH, app.state.mcp, include_in_schema=False)


@contextlib.asynccontextmanager
async def _serving(app: Any) -> AsyncIterator[None]:
    """Nothing at start-up; at shutdown, the session manager's end."""
    try:
        yield
    finally:
        await app.state.mcp.close()


MCP = Protocol(
    name="mcp",
    setting="protocol_mcp",
    install=_install,
    url=lambda program: PATH,
    lifespan=_serving,
)
