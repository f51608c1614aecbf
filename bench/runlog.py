"""``python -m bench.runlog``: what the event log of resumable runs costs per stream.

Since resumable runs, a streamed run writes every event to a log that its readers follow
(``runtime/runlog.py``): ``MemoryLog`` in the process by default, ``RedisLog`` (Redis
Streams) with ``REDIS_URL``. Before, a run handed its events to its one reader through an
``asyncio.Queue``. This module measures what the log costs, on the template's runtime
as it is now (imported from ``templates/`` by :mod:`dspy_forge.dev.template_runtime`, no project
generated), against a real ``redis-server`` on a free loopback port:

``memory``
    Bytes an ended run keeps, for runs of 25, 100 and 1,000 token events (each run also
    has its ``prediction`` and ``done``): in ``MemoryLog``, traced with ``tracemalloc``,
    and the process's RSS delta for 1,000 kept runs (one fresh process per size); in
    Redis, ``MEMORY USAGE`` (``SAMPLES 0``) of the run's two keys (record hash and
    stream) and the ``used_memory`` delta for 1,000 runs.
``cpu``
    CPU microseconds per event, of the append and of one follower reading it, for the
    ``asyncio.Queue`` hand-off of before, ``MemoryLog`` and ``RedisLog`` (its follower on
    the run's own replica, which reads the replica's local copy, or on another replica,
    which reads the stream with ``XREAD``: a second ``RedisLog`` in this process); one
    run at a time, 50 and 200 at once, one follower each, 100 token events each, paced like the
    suite's fake LM (an event every 2 ms). Each measurement is three batches of fresh
    runs of that size, in one event loop after a warm-up: the writers alone with no store
    (the base), the writers appending, the writers appending with a follower each;
    append = second minus first, follow = third minus second. Process CPU from
    ``time.process_time``, Redis's own from ``INFO cpu`` (``used_cpu_user`` +
    ``used_cpu_sys``, less its rate while idle); delivery delay = from the writer calling
    ``append`` to its follower holding the entry.
``http``
    The generated qa service over HTTP (the suite's machinery: :mod:`bench.servers`,
    :func:`bench.suite.measured_batch`), server CPU ms per stream: generated from the
    template before resumable runs (commit 7cb8a59, events through an ``asyncio.Queue``),
    and from the template now without and with ``REDIS_URL``, the three measured in turn;
    plus redis-server's CPU per stream.

Event data is what the service writes: ``TokenEvent(...).model_dump_json()`` inside
``run_id_bound``/``request_id_bound`` with real 32-hex ids (150 bytes for the chunk
``" answer"``). Writes ``runlog.json`` and ``runlog.md`` into ``--out`` (default
``out/bench``) and prints the tables; ``python -m bench --sections runlog`` runs the same
inside the suite (into its ``results.json`` and ``report.md``).

    .venv/bin/python -m bench.runlog                      # about 11 min on 2 cores
    .venv/bin/python -m bench.runlog --quick              # tiny sizes, seconds (smoke test)
    .venv/bin/python -m bench.runlog --sections cpu --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Protocol

import redis

from bench.proc import rss_bytes
from dspy_forge.dev.template_runtime import ROOT, load_runtime

SECTIONS = ("memory", "cpu", "http")
STORES = ("queue", "memory", "redis", "redis-remote")
STORE_NAMES = {
    "queue": "`asyncio.Queue` hand-off (before the log)",
    "memory": "`MemoryLog`",
    "redis": "`RedisLog`, follower on the run's replica",
    "redis-remote": "`RedisLog`, follower on another replica",
}
PROGRAM = "qa"
# The settings' defaults (templates/_settings.yml): RUN_LOG_MAX_EVENTS, RUN_TTL,
# RUN_HEARTBEAT_TIMEOUT. A follower's tick is sse.MAX_TICK (KEEPALIVE_INTERVAL is longer).
MAX_EVENTS = 10_000
TTL = 300.0
HEARTBEAT_TIMEOUT = 10.0
TICK = 1.0
REDIS_MAX_CONNECTIONS = 256  # REDIS_MAX_CONNECTIONS's default
# qa's answer, streamed as the fake LM does it: a word per chunk, with its space.
WORDS = (" The", " answer", " is", " short", ",", " factual", " and", " reasoned", ".")
QA_EVENTS = 23  # a qa stream of the service: 1 status, 20 tokens, prediction, done


@dataclass(frozen=True)
class Config:
    """One setting of this benchmark."""

    name: str = "full"
    sections: tuple[str, ...] = SECTIONS
    # memory: token events per run, runs traced with tracemalloc, runs for the deltas
    sizes: tuple[int, ...] = (25, 100, 1000)
    traced_runs: int = 200
    kept_runs: int = 1000
    usage_samples: int = 10  # runs whose keys MEMORY USAGE reads, per size
    # cpu: runs of ``cpu_tokens`` token events; ``cpu_runs[c]`` runs per batch, c at a time
    cpu_tokens: int = 100
    concurrency: tuple[int, ...] = (1, 50, 200)
    cpu_runs: dict[int, int] = field(default_factory=lambda: {1: 20, 50: 100, 200: 200})
    pace_ms: float = 2.0
    rounds: int = 3
    stores: tuple[str, ...] = STORES
    # http: the generated qa service, streams per batch at each concurrency
    http_streams: dict[int, int] = field(default_factory=lambda: {1: 15, 50: 200})
    http_rounds: int = 5
    http_scenario: str = "delay-2ms"
    # the template's last commit before resumable runs: its service hands events to its
    # reader through an asyncio.Queue (None: not measured)
    http_before_ref: str | None = "7cb8a59"


FULL = Config()
QUICK = Config(
    name="quick",
    sizes=(5, 20),
    traced_runs=5,
    kept_runs=20,
    usage_samples=2,
    cpu_tokens=10,
    concurrency=(1, 4),
    cpu_runs={1: 2, 4: 4},
    rounds=1,
    http_streams={1: 2, 4: 4},
    http_rounds=1,
)


def say(message: str) -> None:
    print(f"[bench.runlog {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _rt() -> Any:
    """The template's runtime package, imported on first use (DSPy comes with it, ~2 s)."""
    load_runtime()
    import forge_service.runtime as runtime  # type: ignore[import-not-found]

    return runtime


# --- the runs written ---------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One run's events as the service writes them: ``(event, data)``, the terminal one last."""

    run_id: str
    events: tuple[tuple[str, str], ...]
    result: dict[str, Any]

    @property
    def data_bytes(self) -> int:
        return sum(len(data) for _, data in self.events)


def make_run(tokens: int) -> Run:
    """A qa run: ``tokens`` token events of ``answer``, its prediction, and ``done``."""
    events = _rt().events
    logs = _rt().logs
    run_id = uuid.uuid4().hex
    chunks = [WORDS[i % len(WORDS)] for i in range(tokens)]
    with logs.run_id_bound(run_id), logs.request_id_bound(uuid.uuid4().hex):
        written = [
            (
                events.TokenEvent.event,
                events.TokenEvent(
                    predictor="predict", field="answer", chunk=chunk
                ).model_dump_json(),
            )
            for chunk in chunks
        ]
        outputs = {"answer": "".join(chunks)}
        prediction = events.PredictionEvent(outputs=outputs)
        written.append((prediction.event, prediction.model_dump_json()))
        written.append((events.DoneEvent.event, events.DoneEvent().model_dump_json()))
    return Run(run_id, tuple(written), outputs)


# --- stores -------------------------------------------------------------------------


class Store(Protocol):
    """What of ``runlog.RunLog`` a run and its follower use (the two logs have it all)."""

    async def start(self, on_cancel: Callable[[str], None]) -> None: ...

    async def close(self) -> None: ...

    async def create(self, record: Any) -> None: ...

    async def append(self, run_id: str, event: str, data: str) -> int: ...

    async def finish(
        self,
        run_id: str,
        status: Any,
        event: str,
        data: str,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, str] | None = None,
    ) -> bool: ...

    async def follow(self, run_id: str, after: int, tick: float) -> AsyncIterator[Any]: ...


class NoStore:
    """No store at all: the writers' own cost (pacing, coroutine calls), the base subtracted."""

    async def start(self, on_cancel: Callable[[str], None]) -> None:
        pass

    async def close(self) -> None:
        pass

    async def create(self, record: Any) -> None:
        pass

    async def append(self, run_id: str, event: str, data: str) -> int:
        return 0

    async def finish(self, run_id: str, status: Any, event: str, data: str, **_: Any) -> bool:
        return True

    async def follow(self, run_id: str, after: int, tick: float) -> AsyncIterator[Any]:
        raise NotImplementedError("the base phase has no follower")


class QueueHandOff:
    """Before the log (commit 7cb8a59, ``run.py``/``runs.py``): one ``asyncio.Queue`` per run.

    The run put each event with ``put_nowait`` and its one reader took it with
    ``get_nowait``, or waited in ``asyncio.timeout(patience)`` for ``get()``: the same
    hand-off here, so the log's cost can be read against what it replaced. Unbounded
    (the old queue held STREAM_BUFFER events; a reader that keeps up never fills it).
    """

    def __init__(self) -> None:
        self.queues: dict[str, asyncio.Queue[Any]] = {}
        self.positions: dict[str, int] = {}

    async def start(self, on_cancel: Callable[[str], None]) -> None:
        pass

    async def close(self) -> None:
        self.queues.clear()

    async def create(self, record: Any) -> None:
        self.queues[record.run_id] = asyncio.Queue()
        self.positions[record.run_id] = 0

    async def append(self, run_id: str, event: str, data: str) -> int:
        position = self.positions[run_id] = self.positions[run_id] + 1
        self.queues[run_id].put_nowait(_rt().runlog.Entry(position, event, data))
        return position

    async def finish(self, run_id: str, status: Any, event: str, data: str, **_: Any) -> bool:
        await self.append(run_id, event, data)
        self.positions.pop(run_id)
        return True

    async def follow(self, run_id: str, after: int, tick: float) -> AsyncIterator[Any]:
        return self._entries(self.queues[run_id], tick)

    async def _entries(self, queue: asyncio.Queue[Any], tick: float) -> AsyncIterator[Any]:
        while True:
            try:
                entry = queue.get_nowait()
            except asyncio.QueueEmpty:
                try:
                    async with asyncio.timeout(tick):
                        entry = await queue.get()
                except TimeoutError:
                    yield None
                    continue
            yield [entry]  # the queue hands on one entry at a time
            if entry.terminal:
                return


class TwoReplicas:
    """Two ``RedisLog`` replicas in one process: runs on the first, followers on the second.

    The replica that runs a run serves its own readers from a local copy; a reader that
    resumed on another replica follows the run's stream in Redis with ``XREAD``, which is
    what the second one does here.
    """

    def __init__(self, owner: Store, other: Store) -> None:
        self.owner = owner
        self.other = other

    async def start(self, on_cancel: Callable[[str], None]) -> None:
        await self.owner.start(on_cancel)
        await self.other.start(on_cancel)

    async def close(self) -> None:
        await self.owner.close()
        await self.other.close()

    async def create(self, record: Any) -> None:
        await self.owner.create(record)

    async def append(self, run_id: str, event: str, data: str) -> int:
        return await self.owner.append(run_id, event, data)

    async def finish(self, run_id: str, status: Any, event: str, data: str, **kw: Any) -> bool:
        return await self.owner.finish(run_id, status, event, data, **kw)

    async def follow(self, run_id: str, after: int, tick: float) -> AsyncIterator[Any]:
        return await self.other.follow(run_id, after, tick)


def make_store(name: str, redis_url: str | None) -> Store:
    """The store ``name`` (one of :data:`STORES`) with the service's default settings."""
    rt = _rt()
    if name == "queue":
        return QueueHandOff()
    if name == "memory":
        store: Store = rt.memory_log.MemoryLog(max_events=MAX_EVENTS, ttl=TTL)
        return store
    if name == "redis":
        assert redis_url is not None
        store = rt.redis_log.RedisLog(
            redis_url,
            prefix="bench:",
            max_events=MAX_EVENTS,
            ttl=TTL,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            max_connections=REDIS_MAX_CONNECTIONS,
        )
        return store
    if name == "redis-remote":
        return TwoReplicas(make_store("redis", redis_url), make_store("redis", redis_url))
    raise ValueError(f"unknown store {name!r}")


# --- writing and following ----------------------------------------------------------


async def write(store: Store, run: Run, pace: float | None, stamps: list[float]) -> None:
    """Append the run's events as ``Run._iterate`` does (then ``finish``), ``pace`` s apart.

    ``stamps[n - 1]`` is when the writer called append for position n, for the delay.
    """
    rt = _rt()
    *body, (last_event, last_data) = run.events
    for event, data in body:
        stamps.append(time.perf_counter())
        await store.append(run.run_id, event, data)
        if pace is not None:
            await asyncio.sleep(pace)
    stamps.append(time.perf_counter())
    await store.finish(
        run.run_id, rt.runlog.RunStatus.DONE, last_event, last_data, result=run.result
    )


async def read(store: Store, run_id: str, stamps: list[float], delays: list[float]) -> int:
    """Follow the run from its start to its terminal event, as a new stream's reader does."""
    batches = await store.follow(run_id, 0, TICK)
    count = 0
    async for batch in batches:
        for entry in batch or ():
            delays.append(time.perf_counter() - stamps[entry.position - 1])
            count += 1
    return count


async def one_run(
    store: Store, run: Run, pace: float | None, follow: bool, delays: list[float]
) -> None:
    """Create the run, follow it (if ``follow``) and write it, as ``StreamedRun`` does."""
    await store.create(_rt().runlog.RunRecord(run.run_id, PROGRAM, None))
    stamps: list[float] = []
    reader = asyncio.create_task(read(store, run.run_id, stamps, delays)) if follow else None
    await write(store, run, pace, stamps)
    if reader is not None:
        got = await reader
        if got != len(run.events):
            raise RuntimeError(f"the follower read {got} of {len(run.events)} events")


async def batch(
    store: Store,
    runs: Iterable[Run],
    concurrency: int,
    pace: float | None,
    follow: bool,
    delays: list[float] | None = None,
) -> None:
    """Every run of ``runs``, ``concurrency`` at a time (closed loop)."""
    pending = iter(runs)
    sink: list[float] = [] if delays is None else delays

    async def worker() -> None:
        for run in pending:
            await one_run(store, run, pace, follow, sink)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


# --- redis-server -------------------------------------------------------------------


@dataclass(frozen=True)
class RedisProcess:
    """A ``redis-server`` of this benchmark's own, and a sync client of it."""

    url: str
    process: subprocess.Popen[bytes]
    client: redis.Redis

    def cpu(self) -> float:
        """Seconds of CPU the server used so far (``INFO cpu``, microsecond resolution)."""
        info = self.client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def used_memory(self) -> int:
        return int(self.client.info("memory")["used_memory"])

    def version(self) -> str:
        return str(self.client.info("server")["redis_version"])


@contextlib.contextmanager
def redis_server(log: IO[bytes] | None = None) -> Iterator[RedisProcess]:
    """``redis-server`` on a free loopback port, nothing persisted, for the ``with`` block.

    Started here rather than with tests/system/servers.py's ``RedisServer``: the bench
    runs without the test tree. ``--save ""`` and ``--appendonly no`` keep the disk (and
    its CPU) out of the figures; every other setting is Redis's default (the stream node
    limits included, ``stream-node-max-bytes 4096``, ``stream-node-max-entries 100``).
    """
    from dspy_forge.dev.devserver import free_port, stop

    executable = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port("127.0.0.1")
    folder = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    command = [
        executable,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(folder),
        "--daemonize",
        "no",
    ]
    process = subprocess.Popen(
        command,
        cwd=folder,
        stdin=subprocess.DEVNULL,
        stdout=log if log is not None else subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=30)
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {process.returncode}")
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer on port {port}")
            time.sleep(0.05)
        yield RedisProcess(f"redis://127.0.0.1:{port}/0", process, client)
    finally:
        client.close()
        stop(process)
        shutil.rmtree(folder, ignore_errors=True)


# --- memory -------------------------------------------------------------------------


def memory_log_traced(tokens: int, runs: int) -> dict[str, Any]:
    """Bytes ``MemoryLog`` keeps per ended run of ``tokens`` token events (tracemalloc)."""

    async def measure() -> dict[str, Any]:
        log = make_store("memory", None)
        data = 0
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(runs):
                run = make_run(tokens)
                data += run.data_bytes
                await one_run(log, run, None, False, [])
                del run
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        await log.close()
        return {
            "runs": runs,
            "events_per_run": tokens + 2,
            "data_bytes_per_run": data / runs,
            "kept_bytes_per_run": (after - before) / runs,
        }

    return asyncio.run(measure())


def memory_log_rss(tokens: int, runs: int) -> dict[str, Any]:
    """RSS grown by ``runs`` ended runs kept in ``MemoryLog``, in a fresh process."""
    command = [sys.executable, "-m", "bench.runlog", "rss", str(tokens), str(runs)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"bench.runlog rss failed:\n{result.stderr[-3000:]}")
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def _rss_child(tokens: int, runs: int) -> dict[str, Any]:
    """In the fresh process: warm up, then the RSS before and after ``runs`` kept runs."""

    async def fill(log: Store, count: int) -> None:
        for _ in range(count):
            await one_run(log, make_run(tokens), None, False, [])

    async def measure() -> dict[str, Any]:
        warm = make_store("memory", None)
        await fill(warm, 20)  # the code paths, pydantic's caches, the loop's first timers
        await warm.close()
        del warm
        gc.collect()
        before = rss_bytes(os.getpid())
        log = make_store("memory", None)
        await fill(log, runs)
        gc.collect()
        after = rss_bytes(os.getpid())
        return {"runs": runs, "rss_bytes_per_run": (after - before) / runs}

    return asyncio.run(measure())


def redis_memory(server: RedisProcess, tokens: int, runs: int, samples: int) -> dict[str, Any]:
    """Redis memory per ended run of ``tokens`` token events: its keys, and ``used_memory``."""
    server.client.flushall()
    ids: list[str] = []

    def runs_made() -> Iterator[Run]:
        for _ in range(runs):
            run = make_run(tokens)
            ids.append(run.run_id)
            yield run

    async def fill() -> None:
        log = make_store("redis", server.url)
        await log.start(lambda run_id: None)
        try:
            await batch(log, runs_made(), min(50, runs), None, False)
        finally:
            await log.close()

    before = server.used_memory()
    asyncio.run(fill())
    after = server.used_memory()
    record, stream = [], []
    for run_id in ids[:samples]:
        record.append(server.client.memory_usage(f"bench:run:{run_id}", samples=0))
        stream.append(server.client.memory_usage(f"bench:run:{run_id}:log", samples=0))
    server.client.flushall()
    return {
        "runs": runs,
        "record_bytes": statistics.mean(record),
        "stream_bytes": statistics.mean(stream),
        "key_bytes_per_run": statistics.mean(record) + statistics.mean(stream),
        "used_memory_bytes_per_run": (after - before) / runs,
    }


def memory_section(c: Config, server: RedisProcess) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for tokens in c.sizes:
        traced = memory_log_traced(tokens, c.traced_runs)
        rss = memory_log_rss(tokens, c.kept_runs)
        in_redis = redis_memory(server, tokens, c.kept_runs, c.usage_samples)
        figures[str(tokens)] = {"memory_log": {**traced, **rss}, "redis": in_redis}
        say(
            f"memory {tokens} tokens: MemoryLog {traced['kept_bytes_per_run'] / 1024:.1f} KiB "
            f"traced, {rss['rss_bytes_per_run'] / 1024:.1f} KiB RSS; Redis keys "
            f"{in_redis['key_bytes_per_run'] / 1024:.1f} KiB, used_memory "
            f"{in_redis['used_memory_bytes_per_run'] / 1024:.1f} KiB "
            f"(event data {traced['data_bytes_per_run'] / 1024:.1f} KiB)"
        )
    return {"sizes": figures, "fit": _fit(figures)}


def _fit(figures: dict[str, Any]) -> dict[str, Any]:
    """Bytes per run = fixed + per event * events, least squares over the sizes, per figure."""
    sizes = sorted(figures, key=int)
    events = [figures[s]["memory_log"]["events_per_run"] for s in sizes]
    series = {
        "data": [figures[s]["memory_log"]["data_bytes_per_run"] for s in sizes],
        "memory_log": [figures[s]["memory_log"]["kept_bytes_per_run"] for s in sizes],
        "memory_log_rss": [figures[s]["memory_log"]["rss_bytes_per_run"] for s in sizes],
        "redis_keys": [figures[s]["redis"]["key_bytes_per_run"] for s in sizes],
        "redis_used": [figures[s]["redis"]["used_memory_bytes_per_run"] for s in sizes],
    }
    if len(sizes) < 2:
        return {}
    fits = {}
    for name, values in series.items():
        slope, intercept = statistics.linear_regression(events, values)
        fits[name] = {"per_event": slope, "fixed": intercept}
    return fits


# --- cpu ----------------------------------------------------------------------------


def cpu_round(
    store_name: str, server: RedisProcess, concurrency: int, runs: int, c: Config
) -> dict[str, Any]:
    """One measurement of ``store_name`` at ``concurrency``: the three phases, in one loop."""
    pace = c.pace_ms / 1000
    events = runs * (c.cpu_tokens + 2)

    async def measure() -> dict[str, Any]:
        store = make_store(store_name, server.url)
        await store.start(lambda run_id: None)
        phases: dict[str, Any] = {}
        try:
            # Warm-up: code paths, Redis's script cache and connection pool, as in a
            # service that has served a while.
            warm = [make_run(c.cpu_tokens) for _ in range(concurrency)]
            await batch(store, warm, concurrency, pace, True)
            for phase in ("base", "append", "follow"):
                target = NoStore() if phase == "base" else store
                batch_runs = [make_run(c.cpu_tokens) for _ in range(runs)]
                delays: list[float] = []
                gc.collect()
                redis0 = server.cpu()
                wall0, cpu0 = time.perf_counter(), time.process_time()
                await batch(target, batch_runs, concurrency, pace, phase == "follow", delays)
                cpu1, wall1 = time.process_time(), time.perf_counter()
                redis1 = server.cpu()
                phases[phase] = {
                    "cpu_s": cpu1 - cpu0,
                    "wall_s": wall1 - wall0,
                    "redis_cpu_s": redis1 - redis0,
                    "delay_p50_s": _percentile(delays, 50),
                    "delay_p99_s": _percentile(delays, 99),
                }
        finally:
            await store.close()
        return phases

    phases = asyncio.run(measure())
    server.client.flushall()
    base, append, follow = phases["base"], phases["append"], phases["follow"]
    us = 1e6 / events
    # Redis's own work while nobody writes (its cron, the log's heartbeat), per second of
    # the base phase: subtracted from the other phases' by their duration.
    idle = base["redis_cpu_s"] / base["wall_s"]
    return {
        "events": events,
        "phases": phases,
        "append_cpu_us": (append["cpu_s"] - base["cpu_s"]) * us,
        "follow_cpu_us": (follow["cpu_s"] - append["cpu_s"]) * us,
        "append_redis_cpu_us": (append["redis_cpu_s"] - idle * append["wall_s"]) * us,
        "follow_redis_cpu_us": (
            follow["redis_cpu_s"]
            - append["redis_cpu_s"]
            - idle * (follow["wall_s"] - append["wall_s"])
        )
        * us,
        "append_wall_us": (append["wall_s"] - base["wall_s"]) * us,
        "follow_wall_us": (follow["wall_s"] - append["wall_s"]) * us,
        "base_cpu_us": base["cpu_s"] * us,
        "wall_us_per_event": follow["wall_s"] * us,
        "delay_p50_us": _scaled(follow["delay_p50_s"], 1e6),
        "delay_p99_us": _scaled(follow["delay_p99_s"], 1e6),
    }


CPU_FIGURES = (
    "append_cpu_us",
    "follow_cpu_us",
    "append_redis_cpu_us",
    "follow_redis_cpu_us",
    "append_wall_us",
    "follow_wall_us",
    "base_cpu_us",
    "wall_us_per_event",
    "delay_p50_us",
    "delay_p99_us",
)


def cpu_section(c: Config, server: RedisProcess) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for number in range(c.rounds):
        shift = number % len(c.stores)
        order = c.stores[shift:] + c.stores[:shift]  # each store goes first in turn
        this_round: dict[str, Any] = {}
        for concurrency in c.concurrency:
            for store in order:
                figures = cpu_round(store, server, concurrency, c.cpu_runs[concurrency], c)
                this_round.setdefault(store, {})[str(concurrency)] = figures
                say(
                    f"cpu round {number + 1}/{c.rounds} c={concurrency} {store}: "
                    f"append {figures['append_cpu_us']:.1f} µs, follow "
                    f"{figures['follow_cpu_us']:.1f} µs per event; redis-server "
                    f"{figures['append_redis_cpu_us']:.1f} + {figures['follow_redis_cpu_us']:.1f}"
                    f" µs; delay p50 {_fmt(figures['delay_p50_us'])} µs"
                )
        runs.append(this_round)
    medians: dict[str, Any] = {}
    for store in c.stores:
        for concurrency in c.concurrency:
            key = str(concurrency)
            per_round = [r[store][key] for r in runs]
            medians.setdefault(store, {})[key] = {
                name: _median([f[name] for f in per_round]) for name in CPU_FIGURES
            }
    return {
        "tokens_per_run": c.cpu_tokens,
        "events_per_run": c.cpu_tokens + 2,
        "runs_per_batch": {str(k): v for k, v in c.cpu_runs.items()},
        "pace_ms": c.pace_ms,
        "runs": runs,
        "median": medians,
    }


# --- http ---------------------------------------------------------------------------


HTTP_SERVICES = {
    "before": "before the log ({ref}: `asyncio.Queue`)",
    "memory": "`MemoryLog` (no `REDIS_URL`)",
    "redis": "`RedisLog` (`REDIS_URL`)",
}


def generate_at(ref: str, out: Path) -> Any:
    """``specs/qa.yaml`` generated from the template as it was at commit ``ref``."""
    from bench.servers import SPECS, Project
    from dspy_forge.render.generate import generate
    from dspy_forge.render.template import TemplateSource
    from dspy_forge.spec.loader import load_spec

    loaded = load_spec(SPECS / f"{PROGRAM}.yaml")
    out = out.resolve()
    if out.exists():
        shutil.rmtree(out)  # a project of an earlier run
    source = TemplateSource(str(ROOT), ref, str(ROOT))
    return Project(generate(loaded, out, source=source), loaded.model.package)


def http_section(c: Config, server: RedisProcess, out: Path) -> dict[str, Any]:
    """The generated qa service's CPU per stream: before the log, and without and with Redis."""
    from bench.servers import BASE_ENV, SERVICE_ENV, generate_project, lm_env
    from bench.suite import measured_batch
    from dspy_forge.dev.devserver import running_service
    from dspy_forge.dev.fakelm.testing import running_fake_lm

    os.environ.pop("REDIS_URL", None)  # the services get this environment; memory has none
    folder = out / "runlog-projects"
    project = generate_project(PROGRAM, folder / PROGRAM)
    projects = {"memory": project, "redis": project}
    if c.http_before_ref:
        from dspy_forge.render.template import RenderError

        try:
            before = generate_at(c.http_before_ref, folder / "before")
        except RenderError as exc:  # a checkout without that commit (a shallow clone)
            say(f"no service before the log: {exc}")
        else:
            projects = {"before": before, **projects}
    runs: list[dict[str, Any]] = []
    with (
        (out / "runlog-servers.log").open("wb") as log,
        running_fake_lm() as fake,
        contextlib.ExitStack() as stack,
    ):
        env = {**BASE_ENV, **lm_env(fake.scenario_base(c.http_scenario)), **SERVICE_ENV}
        redis_env = {"REDIS_URL": server.url, "REDIS_PREFIX": "bench-http:"}
        services = {
            name: stack.enter_context(
                running_service(
                    p.path, p.package, {**env, **(redis_env if name == "redis" else {})}, log=log
                )
            )
            for name, p in projects.items()
        }
        for srv in services.values():  # imports, first-request caches
            measured_batch(srv.process.pid, srv.url, PROGRAM, 1, 1, first_index=10_000)
            measured_batch(srv.process.pid, srv.url, PROGRAM, 8, 4, first_index=10_100)
        first = 20_000
        for number in range(c.http_rounds):
            shift = number % len(services)
            names = list(services)[shift:] + list(services)[:shift]  # each goes first in turn
            this_round: dict[str, Any] = {}
            for concurrency, count in c.http_streams.items():
                for name in names:
                    srv = services[name]
                    redis0 = server.cpu()
                    figures = measured_batch(
                        srv.process.pid, srv.url, PROGRAM, count, concurrency, first
                    )
                    redis_cpu = server.cpu() - redis0
                    first += count
                    completed = figures["completed"] or 1
                    figures["redis_cpu_ms_per_stream"] = 1000 * redis_cpu / completed
                    this_round.setdefault(name, {})[str(concurrency)] = figures
                    say(
                        f"http round {number + 1}/{c.http_rounds} c={concurrency} {name}: "
                        f"{_fmt(figures['cpu_ms_per_stream'])} ms/stream, redis-server "
                        f"{figures['redis_cpu_ms_per_stream']:.2f} ms, "
                        f"{figures['tokens_per_stream']:.1f} tokens, {figures['errors']} errors"
                    )
            runs.append(this_round)
            server.client.flushall()
    names = ("cpu_ms_per_stream", "redis_cpu_ms_per_stream", "tokens_per_stream", "errors")
    medians: dict[str, Any] = {}
    for name in services:
        for concurrency in c.http_streams:
            key = str(concurrency)
            medians.setdefault(name, {})[key] = {
                figure: _median([r[name][key][figure] for r in runs]) for figure in names
            }
    # Ratios of service CPU, taken within each round (the servers measured back to back),
    # then the median: steadier than the ratio of the medians on a shared machine.
    pairs = [("redis", "memory"), ("memory", "before"), ("redis", "before")]
    ratios: dict[str, dict[str, float | None]] = {}
    for top, bottom in pairs:
        if top not in services or bottom not in services:
            continue
        for concurrency in c.http_streams:
            key = str(concurrency)
            per_round = [
                (r[top][key]["cpu_ms_per_stream"], r[bottom][key]["cpu_ms_per_stream"])
                for r in runs
            ]
            ratios.setdefault(f"{top}_to_{bottom}", {})[key] = _median(
                [a / b for a, b in per_round if a and b]
            )
    return {
        "program": PROGRAM,
        "scenario": c.http_scenario,
        "before_ref": c.http_before_ref,
        "streams": {str(k): v for k, v in c.http_streams.items()},
        "runs": runs,
        "median": medians,
        "ratios": ratios,
    }


# --- the whole benchmark ------------------------------------------------------------


def measure(c: Config, out: Path, log: IO[bytes] | None = None) -> dict[str, Any]:
    """Every section of ``c``, against one redis-server; the results document."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    from bench.suite import machine

    results: dict[str, Any] = {"config": _jsonable(asdict(c)), "machine": machine()}
    with redis_server(log) as server:
        results["redis_version"] = server.version()
        results["redis_py"] = redis.__version__  # the client the generated service uses
        sample = make_run(1).events[0][1]
        results["token_event"] = {"example": sample, "bytes": len(sample)}
        timings: dict[str, float] = {}
        for section in c.sections:
            say(f"section {section}")
            section_start = time.perf_counter()
            if section == "memory":
                results["memory"] = memory_section(c, server)
            elif section == "cpu":
                results["cpu"] = cpu_section(c, server)
            elif section == "http":
                results["http"] = http_section(c, server, out)
            timings[section] = time.perf_counter() - section_start
    timings["total"] = time.perf_counter() - started
    results["timings_s"] = timings
    results["machine"]["load_average_end"] = os.getloadavg()
    return results


# --- the report ---------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    """The tables of docs/benchmarks.md's "The event log" section, from one document."""
    parts: list[str] = []
    token = results.get("token_event", {})
    memory = results.get("memory")
    if memory:
        sizes = memory["sizes"]
        runs_rss = results["config"]["kept_runs"]
        lines = [
            "**Memory per ended run, in the process (`MemoryLog`)** (a run = N token events, "
            f"its prediction and done; a token event's data is {token.get('bytes', '?')} "
            "bytes; traced = `tracemalloc`, "
            f"{results['config']['traced_runs']} runs; RSS = the process's growth for "
            f"{runs_rss} kept runs, in a fresh process)",
            "",
            "| token events | events' data (KiB) | kept, traced (KiB) | traced / data | "
            f"RSS per run, {runs_rss} runs (KiB) | kept per event, traced (bytes) |",
            "|---|---|---|---|---|---|",
        ]
        for tokens, f in sorted(sizes.items(), key=lambda item: int(item[0])):
            m = f["memory_log"]
            lines.append(
                f"| {tokens} | {_kib(m['data_bytes_per_run'])} | {_kib(m['kept_bytes_per_run'])}"
                f" | {m['kept_bytes_per_run'] / m['data_bytes_per_run']:.1f}x"
                f" | {_kib(m['rss_bytes_per_run'])}"
                f" | {m['kept_bytes_per_run'] / m['events_per_run']:.0f} |"
            )
        fit = memory.get("fit", {})
        if fit:
            lines += [
                "",
                "Least squares over the sizes, bytes per run = fixed + per event \u00d7 events: "
                + "; ".join(
                    f"{label} {fit[name]['fixed']:.0f} + {fit[name]['per_event']:.0f}/event"
                    for name, label in (
                        ("data", "event data"),
                        ("memory_log", "`MemoryLog` traced"),
                        ("memory_log_rss", "`MemoryLog` RSS"),
                        ("redis_keys", "Redis keys"),
                        ("redis_used", "Redis `used_memory`"),
                    )
                )
                + ".",
            ]
        parts.append("\n".join(lines))

        lines = [
            "**Memory per ended run, `MemoryLog` against Redis** (KiB; Redis "
            f"{results.get('redis_version', '?')}, default stream node limits; keys = "
            "`MEMORY USAGE ... SAMPLES 0` of the record hash plus the stream, mean of "
            f"{results['config']['usage_samples']} runs; `used_memory` = the server's growth "
            f"for {runs_rss} runs)",
            "",
            "| token events | events' data | `MemoryLog` traced | `MemoryLog` RSS | "
            "Redis hash | Redis stream | Redis keys / data | Redis `used_memory` |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for tokens, f in sorted(sizes.items(), key=lambda item: int(item[0])):
            m, r = f["memory_log"], f["redis"]
            lines.append(
                f"| {tokens} | {_kib(m['data_bytes_per_run'])} | {_kib(m['kept_bytes_per_run'])}"
                f" | {_kib(m['rss_bytes_per_run'])} | {_kib(r['record_bytes'])}"
                f" | {_kib(r['stream_bytes'])}"
                f" | {r['key_bytes_per_run'] / m['data_bytes_per_run']:.1f}x"
                f" | {_kib(r['used_memory_bytes_per_run'])} |"
            )
        parts.append("\n".join(lines))

    cpu = results.get("cpu")
    if cpu:
        med = cpu["median"]
        levels = sorted({key for store in med.values() for key in store}, key=int)
        lines = [
            "**CPU per event** (µs; median of "
            f"{results['config']['rounds']} rounds; runs of {cpu['tokens_per_run']} token "
            f"events + prediction + done, one event every {cpu['pace_ms']:g} ms, one follower "
            "each; c = runs at once (c=1: "
            f"{cpu['runs_per_batch'].get('1', '?')} runs one after another); this process's "
            "CPU (`time.process_time`): append = writers appending minus writers alone, "
            "follow = with a follower each minus without; redis-server = its `INFO cpu`, "
            "less its idle rate; wall per event = the batch with followers over its events "
            "(the pace asks 1 per 2 ms per run); delay = from the writer's call to append to "
            "the entry in "
            f"the follower's hands; Redis {results.get('redis_version', '?')}, redis-py "
            f"{results.get('redis_py', '?')})",
            "",
            "| store | c | append | follow | append + follow | redis-server: append / follow "
            "| per qa stream (23 events), ms | wall per event | delay p50 / p99, ms |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for store, by_level in med.items():
            for level in levels:
                f = by_level.get(level)
                if f is None:
                    continue
                total = f["append_cpu_us"] + f["follow_cpu_us"]
                server = f["append_redis_cpu_us"] + f["follow_redis_cpu_us"]
                per_stream = (
                    (total + (server if store.startswith("redis") else 0)) * QA_EVENTS / 1000
                )
                server_cell = (
                    f"{f['append_redis_cpu_us']:.1f} / {f['follow_redis_cpu_us']:.1f}"
                    if store.startswith("redis")
                    else "-"
                )
                lines.append(
                    f"| {STORE_NAMES[store]} | {level} | {f['append_cpu_us']:.1f}"
                    f" | {f['follow_cpu_us']:.1f} | {total:.1f} | {server_cell}"
                    f" | {per_stream:.2f} | {_fmt(f['wall_us_per_event'])}"
                    f" | {_fmt(_scaled(f['delay_p50_us'], 1e-3), 2)}"
                    f" / {_fmt(_scaled(f['delay_p99_us'], 1e-3), 2)} |"
                )
        lines += [
            "",
            "Per qa stream = (append + follow, plus redis-server's for Redis) \u00d7 23 events. "
            "The writers' own cost (pacing, event loop), subtracted: "
            + "; ".join(
                f"c={level} {_fmt(_median([by[level]['base_cpu_us'] for by in med.values()]))}"
                " µs per event"
                for level in levels
            )
            + ".",
        ]
        parts.append("\n".join(lines))

    http = results.get("http")
    if http:
        med = http["median"]
        levels = list(http["streams"])
        ratios = http.get("ratios", {})
        lines = [
            "**The generated qa service over HTTP** (server CPU ms per completed stream, "
            f"median of {results['config']['http_rounds']} rounds, the servers measured in "
            "turn, each first in turn; x = ratio to the service before the log in the same "
            f"round, median; fake LM `{http['scenario']}`; streams per batch: "
            + ", ".join(f"c={k}: {v}" for k, v in http["streams"].items())
            + "; redis-server = its own CPU per stream)",
            "",
            "| service | "
            + " | ".join(f"c={k}" for k in levels)
            + " | "
            + " | ".join(f"redis-server c={k}" for k in levels)
            + " | tokens per stream | errors |",
            "|---|" + "---|" * (2 * len(levels)) + "---|---|",
        ]
        for name, label in HTTP_SERVICES.items():
            f = med.get(name)
            if f is None:
                continue
            cells = []
            for key in levels:
                cell = _fmt(f[key]["cpu_ms_per_stream"], digits=2)
                ratio = ratios.get(f"{name}_to_before", {}).get(key)
                if ratio is not None:
                    cell += f" ({ratio:.2f}x)"
                cells.append(cell)
            for key in levels:
                cells.append(
                    _fmt(f[key]["redis_cpu_ms_per_stream"], digits=2) if name == "redis" else "-"
                )
            lines.append(
                f"| {label.format(ref=http.get('before_ref'))} | "
                + " | ".join(cells)
                + f" | {_fmt(f[levels[-1]]['tokens_per_stream'])}"
                + f" | {_fmt(max(f[k]['errors'] or 0 for k in levels), digits=0)} |"
            )
        redis_to_memory = ratios.get("redis_to_memory", {})
        if redis_to_memory:
            lines += [
                "",
                "`RedisLog` / `MemoryLog`, the ratio taken in each round (median): "
                + ", ".join(f"c={k}: {_fmt(redis_to_memory.get(k), digits=2)}x" for k in levels)
                + ".",
            ]
        parts.append("\n".join(lines))
    timings = results.get("timings_s", {})
    if timings:
        parts.append(
            "Timings: "
            + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings.items())
            + "."
        )
    return "\n\n".join(parts) + "\n"


# --- helpers ------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float | None:
    from bench.load import percentile

    return percentile(values, q)


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _kib(value: float) -> str:
    return f"{value / 1024:.1f}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["rss"]:  # the fresh process of memory_log_rss
        print(json.dumps(_rss_child(int(argv[1]), int(argv[2]))))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.runlog", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--sections", help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--rounds", type=int, help="rounds of the cpu section (median taken)")
    parser.add_argument(
        "--http-levels",
        help="comma-separated concurrencies of the http section (default 1,50; a level "
        "with no default count gets 4 streams per concurrent stream)",
    )
    parser.add_argument("--out", type=Path, default=Path("out/bench"), help="results folder")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    if args.sections:
        sections = tuple(args.sections.split(","))
        unknown = set(sections) - set(SECTIONS)
        if unknown:
            parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
        config = replace(config, sections=sections)
    if args.rounds:
        config = replace(config, rounds=args.rounds)
    if args.http_levels:
        levels = [int(level) for level in args.http_levels.split(",")]
        streams = {level: config.http_streams.get(level, 4 * level) for level in levels}
        config = replace(config, http_streams=streams)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with (out / "runlog-redis.log").open("wb") as log:
        results = measure(config, out, log)
    results["machine"]["command"] = " ".join(
        [Path(sys.executable).name, "-m", "bench.runlog", *argv]
    )
    (out / "runlog.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    report = markdown(results)
    (out / "runlog.md").write_text(report, encoding="utf-8")
    print(report)
    say(f"results in {out}/runlog.json and runlog.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
