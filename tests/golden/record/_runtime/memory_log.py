"""Runs' logs in this process's memory: the store of a single replica.

Each log is a bounded deque of entries; a reader waits on a future of its own
that the next append resolves, so a hundred readers of one run cost one
wake-up each per event, and none polls. (A bare future, not an
``asyncio.Event`` replaced at every append: the event's allocations were a
measurable part of each event's hand-over from the run to its readers.) An
ended run's log is dropped ``ttl`` seconds after its end by a timer, not by a
sweeping task.

A silent reader must still look up every ``tick`` (for keep-alives and the
shutdown). One timer of the store's wakes every waiting reader each tick,
rather than a timeout per wait, which would cost a timer per event of every
run; so a reader's ``None`` comes at the store's tick, at most ``tick``
seconds after it began to wait.
"""

import asyncio
import contextlib
import dataclasses
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from .runlog import (
    RESUME_EXPIRED,
    RUN_NOT_FOUND,
    SLOW_READER,
    Batch,
    Entry,
    LogError,
    RunRecord,
    RunStatus,
)


class _Log:
    """One run: its record and its last ``max_events`` entries."""

    def __init__(self, record: RunRecord, max_events: int) -> None:
        self.record = record
        self.entries: deque[Entry] = deque(maxlen=max_events)
        self.last = 0  # the position of the newest entry; 0 before the first
        self.waiters: list[asyncio.Future[None]] = []  # readers waiting for the next entry

    @property
    def first(self) -> int:
        """The position of the oldest entry kept (the next one, when none is)."""
        return self.entries[0].position if self.entries else self.last + 1

    def add(self, event: str, data: str) -> int:
        self.last = position = self.last + 1
        self.entries.append(Entry(position, event, data))
        self.wake()
        return position

    def wake(self) -> None:
        """Wake every reader waiting now; later ones wait on futures of their own.

        A reader cancelled while it waited left its future done: it is skipped.
        """
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class MemoryLog:
    """Runs' logs in memory, each kept ``ttl`` seconds after its run ended."""

    def __init__(self, *, max_events: int, ttl: float) -> None:
        self.max_events = max_events
        self.ttl = ttl
        self._logs: dict[str, _Log] = {}
        self._waiting: set[_Log] = set()  # logs that readers began to wait on since the tick
        self._tick: float | None = None  # the shortest tick a reader asked for
        self._ticker: asyncio.TimerHandle | None = None

    async def start(self, on_cancel: Callable[[str], None]) -> None:
        """Nothing to start: every run of this store is this process's."""

    async def close(self) -> None:
        self._logs.clear()
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    async def ready(self) -> bool:
        return True

    def __len__(self) -> int:
        """Runs whose logs are kept now."""
        return len(self._logs)

    def stats(self) -> dict[str, int]:
        """Runs kept, and the bytes of their events' data (for ``/_debug/stats``)."""
        size = sum(len(e.data) for log in self._logs.values() for e in log.entries)
        return {"kept_runs": len(self._logs), "kept_bytes": size}

    async def create(self, record: RunRecord) -> None:
        self._logs[record.run_id] = _Log(record, self.max_events)

    def _log(self, run_id: str) -> _Log:
        log = self._logs.get(run_id)
        if log is None:
            raise LogError(RUN_NOT_FOUND)
        return log

    async def append(self, run_id: str, event: str, data: str) -> int:
        log = self._log(run_id)
        if log.record.status is not RunStatus.RUNNING:
            raise LogError(RUN_NOT_FOUND)
        return log.add(event, data)

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
        log = self._logs.get(run_id)
        if log is None or log.record.status is not RunStatus.RUNNING:
            return False
        position = log.add(event, data)
        log.record = dataclasses.replace(
            log.record, status=status, events=position, result=result, error=error
        )
        loop = asyncio.get_running_loop()
        loop.call_later(self.ttl, self._logs.pop, run_id, None)
        return True

    async def get(self, run_id: str) -> RunRecord | None:
        log = self._logs.get(run_id)
        if log is None:
            return None
        return dataclasses.replace(log.record, events=log.last)

    async def follow(self, run_id: str, after: int, tick: float) -> AsyncIterator[Batch | None]:
        log = self._log(run_id)
        if after + 1 < log.first:
            raise LogError(RESUME_EXPIRED)
        return self._entries(log, after, tick)

    async def _entries(self, log: _Log, after: int, tick: float) -> AsyncIterator[Batch | None]:
        loop = asyncio.get_running_loop()  # once: each call is a getpid() system call (3.11)
        position = after
        while True:
            if position < log.last:
                if position + 1 < log.first:
                    raise LogError(SLOW_READER)
                # The newest entries, indexed from the right: a reader is at most a few behind.
                entries = log.entries
                batch = [entries[-back] for back in range(log.last - position, 0, -1)]
                position = batch[-1].position
                yield batch
                if batch[-1].terminal:
                    return
                continue
            waiter = loop.create_future()
            log.waiters.append(waiter)
            self._wait_on(log, tick)
            await waiter
            if position == log.last:
                yield None  # woken by the tick

    def _wait_on(self, log: _Log, tick: float) -> None:
        """A reader waits on ``log``: the next tick wakes it, if no entry does first."""
        self._waiting.add(log)
        if self._tick is None or tick < self._tick:
            self._tick = tick
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().call_later(self._tick, self._wake_waiting)

    def _wake_waiting(self) -> None:
        """The tick: wake every waiting reader. Each waits again, which sets the next tick."""
        self._ticker = None
        logs, self._waiting = self._waiting, set()
        for log in logs:
            log.wake()

    @contextlib.asynccontextmanager
    async def reading(self, run_id: str) -> AsyncIterator[None]:
        yield  # every reader is local: the run counts its own readers

    async def read_elsewhere(self, run_id: str) -> bool:
        return False

    async def request_cancel(self, run_id: str) -> None:
        """Nothing to ask: a run of this store is this process's, cancelled directly."""
