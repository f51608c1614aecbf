"""Runs' logs in Redis: the store of many replicas (``REDIS_URL`` set).

Keys, under ``prefix``:

- ``run:<id>``: a hash, the run's record (program, caller, owner, status,
  events, result, error, and ``cancel`` once someone asked);
- ``run:<id>:log``: a Redis Stream of its events, entry ``<n>-0`` at position n;
- ``run:<id>:readers``: present while a reader on another replica reads it;
- ``replica:<id>``: present while that replica is alive (its heartbeat);
- channel ``cancel``: run ids whose owner should cancel them now.

Notes:
1. Appending and ending are Lua scripts, so each is atomic: an event is
   appended only while the run is running, and exactly one caller ends a run
   (its owner, or a reader elsewhere that found the owner's heartbeat gone and
   declares it lost). A run declared lost refuses its owner's next append,
   which makes the owner, if it was only slow, stop it. An append names the
   position it writes, so a command retried after a dropped connection (the
   client retries connection errors) never writes an event twice.
2. A running run's keys expire ``ttl`` plus the heartbeat timeout after their
   owner's last heartbeat, an ended one's ``ttl`` after its end: a replica that
   dies leaves nothing behind for long.
3. Cancels travel by pub/sub (at once) and by the record's ``cancel`` field,
   which the owner reads at each heartbeat (a message is lost if the owner's
   subscription was down when it was sent).
4. The replica that runs a run also keeps its events in memory (a
   ``MemoryLog``) while it runs and for ``LOCAL_LINGER`` seconds after: its own
   readers, nearly all of them (a client resumes elsewhere only after a cut),
   read there and cost Redis nothing; only readers on other replicas block in
   ``XREAD``, one pooled connection each. The pool is bounded
   (``max_connections``) and blocks rather than fails when it is full.
"""

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from .memory_log import MemoryLog
from .runlog import (
    RESUME_EXPIRED,
    RUN_LOST,
    RUN_NOT_FOUND,
    SLOW_READER,
    STORE_UNAVAILABLE,
    Batch,
    Entry,
    LogError,
    RunRecord,
    RunStatus,
)

logger = logging.getLogger(__name__)

_APPEND = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
local n = ARGV[5]
if tonumber(redis.call('HGET', KEYS[1], 'events')) >= tonumber(n) then return n end
redis.call('HSET', KEYS[1], 'events', n)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], n .. '-0', 'e', ARGV[1], 'd', ARGV[2])
if n == '1' then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
return n
"""
_FINISH = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'events', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], n .. '-0', 'e', ARGV[2], 'd', ARGV[3])
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'result', ARGV[4], 'error', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return n
"""
PRESENCE = 2.0  # seconds a remote reader's mark outlives its last refresh
LOCAL_LINGER = 10.0  # seconds a run's local copy outlives its end (note 4)


@contextlib.contextmanager
def _unavailable_on_error() -> Iterator[None]:
    """Turn Redis's errors into ``store_unavailable`` for the client."""
    try:
        yield
    except RedisError as exc:
        logger.warning("Redis failed: %s", exc)
        raise LogError(STORE_UNAVAILABLE) from exc


class RedisLog:
    """Runs' logs in Redis Streams, shared by every replica that uses ``url``."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        max_events: int,
        ttl: float,
        heartbeat_timeout: float,
        max_connections: int,
    ) -> None:
        # A pooled connection idle for a second is checked (PING) before use, and a command
        # that meets a dropped connection is retried, briefly: the first command after Redis
        # restarts does not fail on a connection the old server closed.
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=5.0,  # then "store_unavailable", not a wait without end
            decode_responses=True,
            socket_connect_timeout=2.0,
            health_check_interval=1,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 3),
        )
        self.redis = redis.Redis(connection_pool=pool)
        self.prefix = prefix
        self.max_events = max_events
        self.ttl_ms = int(ttl * 1000)
        self.heartbeat_ms = int(heartbeat_timeout * 1000)
        self.replica = uuid.uuid4().hex
        self.owned: dict[str, int] = {}  # running runs of this replica: their last position
        self.local = MemoryLog(max_events=max_events, ttl=LOCAL_LINGER)  # note 4
        self._append = self.redis.register_script(_APPEND)
        self._finish = self.redis.register_script(_FINISH)
        self._tasks: list[asyncio.Task[None]] = []
        self._on_cancel: Callable[[str], None] = lambda run_id: None

    def _key(self, run_id: str, part: str = "") -> str:
        return f"{self.prefix}run:{run_id}{part}"

    async def start(self, on_cancel: Callable[[str], None]) -> None:
        self._on_cancel = on_cancel
        try:
            await self._beat()  # alive before the first run, so none is taken for lost
        except RedisError as exc:
            logger.warning("Redis unreachable at start-up (%s); /readyz says 503 until it is", exc)
        self._tasks = [
            asyncio.create_task(self._heartbeat(), name="redis-heartbeat"),
            asyncio.create_task(self._cancels(), name="redis-cancels"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(RedisError):
            await self.redis.delete(f"{self.prefix}replica:{self.replica}")
        await self.redis.aclose()

    def stats(self) -> dict[str, int]:
        """This replica's running runs and local copies (for ``/_debug/stats``)."""
        return {"owned_runs": len(self.owned), **self.local.stats()}

    async def ready(self) -> bool:
        try:
            async with asyncio.timeout(1.0):
                return bool(await self.redis.ping())
        except (RedisError, TimeoutError):
            return False

    async def _beat(self) -> None:
        """Mark this replica alive, keep its runs' keys, and pick up missed cancels."""
        owned = list(self.owned)
        keep_ms = self.ttl_ms + self.heartbeat_ms
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(f"{self.prefix}replica:{self.replica}", "1", px=self.heartbeat_ms)
            for run_id in owned:
                pipe.pexpire(self._key(run_id), keep_ms)
                pipe.pexpire(self._key(run_id, ":log"), keep_ms)
                pipe.hget(self._key(run_id), "cancel")
            replies = await pipe.execute()
        for run_id, cancel in zip(owned, replies[3::3], strict=True):
            if cancel:
                self._on_cancel(run_id)

    async def _heartbeat(self) -> None:
        interval = max(self.heartbeat_ms / 4000, 0.1)
        while True:
            await asyncio.sleep(interval)
            try:
                await self._beat()
            except RedisError as exc:
                logger.warning("Redis heartbeat failed: %s", exc)

    async def _cancels(self) -> None:
        """Cancel the runs that other replicas ask this one to cancel."""
        while True:
            try:
                async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(f"{self.prefix}cancel")
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            self._on_cancel(message["data"])
            except RedisError as exc:
                logger.warning("Redis cancel subscription failed (%s); retrying", exc)
                await asyncio.sleep(1.0)

    async def create(self, record: RunRecord) -> None:
        fields = {
            "program": record.program,
            "caller": record.caller or "",
            "owner": self.replica,
            "status": RunStatus.RUNNING.value,
            "events": 0,
        }
        with _unavailable_on_error():
            async with self.redis.pipeline(transaction=False) as pipe:
                # The heartbeat too: a Redis that restarted empty has forgotten this replica.
                pipe.set(f"{self.prefix}replica:{self.replica}", "1", px=self.heartbeat_ms)
                pipe.hset(self._key(record.run_id), mapping=fields)
                pipe.pexpire(self._key(record.run_id), self.ttl_ms + self.heartbeat_ms)
                await pipe.execute()
        self.owned[record.run_id] = 0
        await self.local.create(record)

    async def append(self, run_id: str, event: str, data: str) -> int:
        if run_id not in self.owned:
            raise LogError(RUN_NOT_FOUND)
        position = self.owned[run_id] + 1
        keys = [self._key(run_id), self._key(run_id, ":log")]
        keep_ms = self.ttl_ms + self.heartbeat_ms
        with _unavailable_on_error():
            written = await self._append(keys, [event, data, self.max_events, keep_ms, position])
        if not written:
            self.owned.pop(run_id, None)
            raise LogError(RUN_NOT_FOUND)
        self.owned[run_id] = position
        await self.local.append(run_id, event, data)
        return position

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
        self.owned.pop(run_id, None)
        keys = [self._key(run_id), self._key(run_id, ":log")]
        args = [
            status.value,
            event,
            data,
            json.dumps(result) if result is not None else "",
            json.dumps(error) if error is not None else "",
            self.ttl_ms,
            self.max_events,
        ]
        try:
            with _unavailable_on_error():
                return bool(await self._finish(keys, args))
        finally:
            # Local readers end with this run's own end, even when Redis has another one
            # (a replica that took the run for lost) or is down.
            await self.local.finish(run_id, status, event, data, result=result, error=error)

    async def get(self, run_id: str) -> RunRecord | None:
        with _unavailable_on_error():
            fields = await self.redis.hgetall(self._key(run_id))
        if not fields or "status" not in fields:
            return None
        return RunRecord(
            run_id=run_id,
            program=fields["program"],
            caller=fields["caller"] or None,
            status=RunStatus(fields["status"]),
            events=int(fields["events"]),
            result=json.loads(fields["result"]) if fields.get("result") else None,
            error=json.loads(fields["error"]) if fields.get("error") else None,
        )

    async def follow(self, run_id: str, after: int, tick: float) -> AsyncIterator[Batch | None]:
        if await self.local.get(run_id) is not None:
            return await self.local.follow(run_id, after, tick)
        record = await self.get(run_id)
        if record is None:
            raise LogError(RUN_NOT_FOUND)
        if after < record.events:
            with _unavailable_on_error():
                oldest = await self.redis.xrange(self._key(run_id, ":log"), count=1)
            first = int(oldest[0][0].split("-")[0]) if oldest else record.events + 1
            if after + 1 < first:
                raise LogError(RESUME_EXPIRED)
        return self._entries(run_id, after, tick)

    async def _entries(self, run_id: str, after: int, tick: float) -> AsyncIterator[Batch | None]:
        stream = self._key(run_id, ":log")
        last_id, position = f"{after}-0", after
        block_ms = max(int(tick * 1000), 1)
        while True:
            with _unavailable_on_error():
                reply = await self.redis.xread({stream: last_id}, count=256, block=block_ms)
            if not reply:
                yield None
                await self._check_alive(run_id)
                continue
            batch: Batch = []
            for entry_id, fields in reply[0][1]:
                number = int(entry_id.split("-")[0])
                if number != position + 1:
                    raise LogError(SLOW_READER)  # the entries in between were trimmed
                last_id, position = entry_id, number
                batch.append(Entry(number, fields["e"], fields["d"]))
                if batch[-1].terminal:
                    break
            yield batch
            if batch[-1].terminal:
                return

    async def _check_alive(self, run_id: str) -> None:
        """Declare the run lost if it still runs but its replica's heartbeat is gone."""
        with _unavailable_on_error():
            status, owner = await self.redis.hmget(self._key(run_id), ["status", "owner"])
            if status is None:
                raise LogError(RUN_NOT_FOUND)
            if status != RunStatus.RUNNING.value:
                return
            if await self.redis.exists(f"{self.prefix}replica:{owner}"):
                return
        logger.warning("run %s: its replica %s stopped; the run is lost", run_id, owner)
        error = {"code": RUN_LOST.code, "message": RUN_LOST.message}
        data = json.dumps({"run_id": run_id, "request_id": "", **error})
        await self.finish(run_id, RunStatus.LOST, "error", data, error=error)

    @contextlib.asynccontextmanager
    async def reading(self, run_id: str) -> AsyncIterator[None]:
        if run_id in self.owned:
            yield  # the run counts its own replica's readers
            return
        task = asyncio.create_task(self._mark_read(run_id), name=f"reading-{run_id}")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _mark_read(self, run_id: str) -> None:
        key = self._key(run_id, ":readers")
        while True:
            with contextlib.suppress(RedisError):
                await self.redis.set(key, "1", px=int(PRESENCE * 1000))
            await asyncio.sleep(PRESENCE / 4)

    async def read_elsewhere(self, run_id: str) -> bool:
        with _unavailable_on_error():
            return bool(await self.redis.exists(self._key(run_id, ":readers")))

    async def request_cancel(self, run_id: str) -> None:
        with _unavailable_on_error():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(self._key(run_id), "cancel", "1")
                # A run that expired a moment ago: the stray hash goes too.
                pipe.pexpire(self._key(run_id), self.ttl_ms + self.heartbeat_ms, nx=True)
                pipe.publish(f"{self.prefix}cancel", run_id)
                await pipe.execute()
