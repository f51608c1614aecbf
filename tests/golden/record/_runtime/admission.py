"""Who may start a run, and the server's shutdown: slots, per-caller caps, drain.

A run takes a slot before it starts and gives it back when it ends, or, for a
stream, as soon as its client has fallen too far behind. Past the total
(``max_concurrent``) a request gets 503 ``overloaded``, past its caller's own
cap (``max_per_caller``) 429 ``too_many_runs``, both at once: nothing is
queued, so a burst costs no memory and the client knows to retry.

On SIGTERM the process drains: no run is admitted any more, open runs get
``shutdown_grace`` seconds to end, and then the grace period is over and
whatever is left is ended (``Runs.drain``).
"""

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from .errors import Failure
from .limits import CALLER_BUSY, OVERLOADED, RunLimits

SHUTTING_DOWN = Failure(503, "shutting_down", "The server is shutting down; retry elsewhere.", 1.0)


class Admission:
    """The slots of every run of the process, per caller, and whether it is shutting down."""

    def __init__(self, limits: RunLimits) -> None:
        self.limits = limits
        self.active = 0
        self.by_caller: dict[str, int] = {}
        self.draining = False
        self.grace_over = False  # the shutdown's grace period is over: open runs are ended
        self._drained = asyncio.Event()

    def admit(self, caller: str) -> Failure | None:
        """Take a slot for a new run of ``caller``, or say why it cannot start now."""
        if self.draining:
            return SHUTTING_DOWN
        if self.active >= self.limits.max_concurrent:
            return OVERLOADED
        per_caller = self.limits.max_per_caller
        held = self.by_caller.get(caller, 0)
        if per_caller is not None and held >= per_caller:
            return CALLER_BUSY
        self.active += 1
        self.by_caller[caller] = held + 1
        return None

    def release(self, caller: str) -> None:
        """Give back a slot of ``caller``'s (once per slot taken)."""
        self.active -= 1
        held = self.by_caller[caller] - 1
        if held:
            self.by_caller[caller] = held
        else:
            del self.by_caller[caller]
        if self.draining and self.active == 0:
            self._drained.set()

    async def drain(self) -> bool:
        """Refuse new runs; wait at most ``shutdown_grace`` seconds for the open ones to end.

        Return whether they all did. If not, the grace period is over
        (:attr:`grace_over`), and the caller ends the runs that are left.
        """
        self.draining = True
        if self.active == 0:
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.limits.shutdown_grace):
                await self._drained.wait()
                return True
        self.grace_over = True
        return False


def drain_on_signals(drain: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Start ``drain()`` when the process gets SIGTERM or SIGINT, then let the server stop.

    The server's own handler (uvicorn's) still runs after ours: it stops
    accepting connections and waits for the open responses, which the drain
    ends within the grace period. Signals reach only the main thread: an app
    run elsewhere (a test client, an embedding server) is drained by its host.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(lambda: loop.create_task(drain()))
            if callable(previous):
                previous(signum, frame)

        signal.signal(sig, handler)
