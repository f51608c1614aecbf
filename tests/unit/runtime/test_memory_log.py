"""memory_log.py: a run's log in memory, its bounds, its end, and its time to live."""

from __future__ import annotations

import asyncio

import pytest
from forge_service.runtime.memory_log import MemoryLog
from forge_service.runtime.runlog import LogError, RunRecord, RunStatus

RUN = "a" * 32


async def new_log(**changes: float) -> MemoryLog:
    log = MemoryLog(max_events=int(changes.get("max_events", 100)), ttl=changes.get("ttl", 60.0))
    await log.create(RunRecord(RUN, "qa", None))
    return log


async def read(log: MemoryLog, after: int = 0) -> list[tuple[int, str]]:
    batches = await log.follow(RUN, after, 0.01)
    return [(e.position, e.event) async for batch in batches if batch for e in batch]


async def test_events_are_numbered_from_one_and_the_end_is_written_once() -> None:
    log = await new_log()
    assert [await log.append(RUN, "token", "{}") for _ in range(3)] == [1, 2, 3]
    assert await log.finish(RUN, RunStatus.DONE, "done", "{}", result={"answer": "x"})
    assert not await log.finish(RUN, RunStatus.FAILED, "error", "{}")  # ended already
    with pytest.raises(LogError) as refused:
        await log.append(RUN, "token", "{}")
    assert refused.value.failure.code == "run_not_found"
    assert await read(log) == [(1, "token"), (2, "token"), (3, "token"), (4, "done")]
    assert await read(log, after=2) == [(3, "token"), (4, "done")]
    record = await log.get(RUN)
    assert record is not None
    assert (record.status, record.events, record.result) == (RunStatus.DONE, 4, {"answer": "x"})


async def test_a_follower_waits_for_events_to_come_and_stops_after_the_end() -> None:
    log = await new_log()
    reading = asyncio.ensure_future(read(log))
    await asyncio.sleep(0.03)
    await log.append(RUN, "token", "{}")
    await log.finish(RUN, RunStatus.DONE, "done", "{}")
    assert await asyncio.wait_for(reading, 1.0) == [(1, "token"), (2, "done")]


async def test_a_follower_gets_every_event_there_is_in_one_batch() -> None:
    """A reader that is behind catches up in one batch (one write), in order, to the end."""
    log = await new_log()
    batches = await log.follow(RUN, 0, 0.01)
    await log.append(RUN, "status", "{}")
    assert [e.position for e in await anext(batches)] == [1]
    for _ in range(3):
        await log.append(RUN, "token", "{}")
    assert [e.position for e in await anext(batches)] == [2, 3, 4]
    await log.append(RUN, "token", "{}")
    await log.finish(RUN, RunStatus.DONE, "done", "{}")
    assert [(e.position, e.event) for e in await anext(batches)] == [(5, "token"), (6, "done")]
    with pytest.raises(StopAsyncIteration):
        await anext(batches)  # the batch with the terminal event was the last


async def test_only_the_last_max_events_are_kept_and_a_resume_before_them_is_refused() -> None:
    log = await new_log(max_events=2)
    for _ in range(5):
        await log.append(RUN, "token", "{}")
    batches = await log.follow(RUN, 3, 0.01)
    assert [entry.position for entry in await anext(batches)] == [4, 5]
    with pytest.raises(LogError) as refused:
        await log.follow(RUN, 1, 0.01)
    assert refused.value.failure.code == "resume_expired"


async def test_an_ended_runs_log_is_dropped_after_its_ttl() -> None:
    log = await new_log(ttl=0.05)
    await log.finish(RUN, RunStatus.DONE, "done", "{}")
    assert len(log) == 1
    await asyncio.sleep(0.1)
    assert len(log) == 0 and await log.get(RUN) is None
    with pytest.raises(LogError) as refused:
        await log.follow(RUN, 0, 0.01)
    assert refused.value.failure.code == "run_not_found"


async def test_silent_readers_share_one_timer_and_each_gets_a_tick_of_silence() -> None:
    """A timeout per wait would be a timer per event of every run; the store keeps one."""
    store = MemoryLog(max_events=100, ttl=60.0)
    runs = [f"{n:032x}" for n in range(20)]
    for run in runs:
        await store.create(RunRecord(run, "qa", None))
    followers = [await store.follow(run, 0, 0.05) for run in runs for _ in range(2)]
    waits = [asyncio.ensure_future(anext(f)) for f in followers]
    await asyncio.sleep(0)  # every reader waits now
    loop = asyncio.get_running_loop()
    timers = [t for t in loop._scheduled if not t.cancelled()]  # type: ignore[attr-defined]
    assert len(timers) == 1
    assert await asyncio.gather(*waits) == [None] * len(followers)  # silence, within a tick
    await store.append(runs[0], "token", "{}")
    batch = await anext(followers[0])
    assert batch is not None and [e.position for e in batch] == [1]
    for follower in followers:
        await follower.aclose()
    await asyncio.sleep(0.1)
    assert not [t for t in loop._scheduled if not t.cancelled()]  # type: ignore[attr-defined]


async def test_a_reader_cancelled_while_it_waits_leaves_the_others_their_wake_ups() -> None:
    """Each reader waits on a future of its own: cancelling one cancels only its future."""
    store = await new_log()
    gone, staying = await store.follow(RUN, 0, 0.05), await store.follow(RUN, 0, 0.05)
    cancelled = asyncio.ensure_future(anext(gone))
    waiting = asyncio.ensure_future(anext(staying))
    await asyncio.sleep(0)  # both wait now
    cancelled.cancel()
    await asyncio.sleep(0)
    await store.append(RUN, "token", "{}")
    batch = await asyncio.wait_for(waiting, 1)
    assert batch is not None and [e.position for e in batch] == [1]
    assert cancelled.cancelled()
    await staying.aclose()
    await asyncio.sleep(0.1)  # the store's tick, once, and then no timer is left
    loop = asyncio.get_running_loop()
    assert not [t for t in loop._scheduled if not t.cancelled()]  # type: ignore[attr-defined]
