"""A run's event log: what every reader of a run reads, wherever it connects.

A streamed run writes each of its events to its log, numbered from 1, and ends
it with one terminal event (``done`` or ``error``); readers follow the log from
any position, so a client that reconnects resumes where it stopped, and a
second client can read the same run. Two stores keep logs:

- ``memory_log.MemoryLog`` (the default): this process's memory, for one replica;
- ``redis_log.RedisLog`` (``REDIS_URL`` set): Redis Streams, for many, so a run
  started on one replica is resumed, read and cancelled through another.

Both keep at most ``max_events`` events of a run (older ones are dropped: a
resume from before them is refused, 410) and drop an ended run's log ``ttl``
seconds after it ended.
"""

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from .errors import Failure

TERMINAL = frozenset({"done", "error"})  # the events that end a log


class RunStatus(StrEnum):
    """Where a run is: running, or how it ended."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"  # its replica stopped answering before it ended


@dataclass(frozen=True, slots=True)  # one per event kept: 40 bytes fewer each
class Entry:
    """One event of a run's log: its position (from 1), its type and its JSON data."""

    position: int
    event: str
    data: str

    @property
    def terminal(self) -> bool:
        return self.event in TERMINAL


# The entries of a log that a reader gets at once: one or more, in order.
Batch = list[Entry]


@dataclass(frozen=True)
class RunRecord:
    """What a store knows of a run besides its events."""

    run_id: str
    program: str
    caller: str | None  # who may read it; None: anyone who has its id
    status: RunStatus = RunStatus.RUNNING
    events: int = 0  # the position of its last event
    result: dict[str, Any] | None = None  # the prediction's outputs, once done
    error: dict[str, str] | None = None  # {"code", "message"}, once failed


RUN_NOT_FOUND = Failure(404, "run_not_found", "No such run: it never existed, or it expired.")
RESUME_EXPIRED = Failure(
    410, "resume_expired", "The events after that position are no longer kept; start a new run."
)
SLOW_READER = Failure(
    503,
    "slow_reader",
    "The client fell behind the events the run keeps; resume is no longer possible.",
    log_level=logging.WARNING,
)
STORE_UNAVAILABLE = Failure(
    503, "store_unavailable", "The run store cannot be reached; retry shortly.", 1.0
)
RUN_LOST = Failure(
    502, "run_lost", "The replica running this run stopped before it ended; start a new run."
)
# Nobody sees these as an HTTP status unless the run ends before its first event.
CANCELLED = Failure(409, "cancelled", "The run was cancelled.", log_level=logging.INFO)
DISCONNECTED = Failure(
    409, "disconnected", "The client disconnected; the run was stopped.", log_level=logging.INFO
)
ABANDONED = Failure(
    409, "disconnected", "No client read the run within its grace period.", log_level=logging.INFO
)


class LogError(Exception):
    """A store refused an operation; ``failure`` says how to tell the client."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.code)
        self.failure = failure


class RunLog(Protocol):
    """A store of runs' logs; every method may raise ``LogError`` ``store_unavailable``."""

    async def start(self, on_cancel: Callable[[str], None]) -> None:
        """Connect, and start the store's background work.

        ``on_cancel(run_id)`` is called when a cancel of a run comes from
        another process; it is a no-op for runs this process does not own.
        """

    async def close(self) -> None:
        """Stop the background work and disconnect."""

    async def ready(self) -> bool:
        """Whether the store answers now (``/readyz``)."""

    def stats(self) -> dict[str, int]:
        """Counts for ``/_debug/stats``."""

    async def create(self, record: RunRecord) -> None:
        """Register a new run, owned by this process."""

    async def append(self, run_id: str, event: str, data: str) -> int:
        """Add an event to a running run's log; its position.

        Raises ``LogError`` ``run_not_found`` if the run is over (another
        replica declared it lost, for example): its owner must stop it.
        """

    async def finish(
        self,
        run_id: str,
        status: RunStatus,
        event: str,
        data: str,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, str] | None = None,
    ) -> bool:
        """End the run with its terminal event, once; whether this call ended it."""

    async def get(self, run_id: str) -> RunRecord | None:
        """The run's record, or None if there is no such run (or it expired)."""

    async def follow(self, run_id: str, after: int, tick: float) -> AsyncIterator[Batch | None]:
        """The run's events after position ``after``, until its terminal event.

        Checks first, before the iterator is returned: ``LogError`` with
        ``run_not_found``, or ``resume_expired`` when the events just after
        ``after`` are no longer kept. The iterator yields every event there is
        at once, in order, as one batch (a reader that is behind sends them in
        one write), the last batch ending with the terminal event; None at
        least every ``tick`` seconds while no event comes (a reader measures
        silence by the clock, not by counting them); and raises ``LogError``
        ``slow_reader`` if its reader falls so far behind that the events it
        needs next are dropped.
        """

    def reading(self, run_id: str) -> AbstractAsyncContextManager[None]:
        """Tell the run's owner, for the ``with`` block, that someone reads the run."""

    async def read_elsewhere(self, run_id: str) -> bool:
        """Whether a reader of another process reads this process's run now."""

    async def request_cancel(self, run_id: str) -> None:
        """Ask the run's owner, wherever it is, to cancel it."""
