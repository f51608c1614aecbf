"""admission.py: slots per caller, refusals at once, and the drain."""

from __future__ import annotations

import asyncio
import signal
import threading
from typing import Any

import pytest
from forge_service.runtime.admission import SHUTTING_DOWN, Admission, drain_on_signals
from forge_service.runtime.limits import CALLER_BUSY, OVERLOADED

from .helpers import limits


def test_admit_takes_slots_until_max_concurrent_then_refuses_503_overloaded() -> None:
    admission = Admission(limits(max_concurrent=2))
    assert admission.admit("a") is None
    assert admission.admit("b") is None
    assert admission.admit("c") is OVERLOADED
    assert (OVERLOADED.status, OVERLOADED.code, OVERLOADED.retry_after) == (503, "overloaded", 1.0)
    assert admission.active == 2


def test_admit_caps_each_caller_with_429_too_many_runs_while_others_still_get_in() -> None:
    admission = Admission(limits(max_concurrent=10, max_per_caller=2))
    assert admission.admit("key-0") is None
    assert admission.admit("key-0") is None
    assert admission.admit("key-0") is CALLER_BUSY
    assert (CALLER_BUSY.status, CALLER_BUSY.code) == (429, "too_many_runs")
    assert admission.admit("key-1") is None
    assert admission.by_caller == {"key-0": 2, "key-1": 1}


def test_no_per_caller_cap_by_default() -> None:
    admission = Admission(limits(max_concurrent=5))
    assert all(admission.admit("127.0.0.1") is None for _ in range(5))


def test_release_gives_the_slot_back_and_forgets_a_caller_with_none_left() -> None:
    admission = Admission(limits(max_concurrent=1, max_per_caller=1))
    admission.admit("a")
    admission.release("a")
    assert (admission.active, admission.by_caller) == (0, {})
    assert admission.admit("a") is None


def test_a_refused_run_takes_no_slot() -> None:
    admission = Admission(limits(max_concurrent=1))
    admission.admit("a")
    admission.admit("b")
    assert (admission.active, admission.by_caller) == (1, {"a": 1})


async def test_drain_refuses_every_new_run_with_shutting_down() -> None:
    admission = Admission(limits())
    assert await admission.drain() is True
    assert admission.draining
    assert admission.admit("a") is SHUTTING_DOWN
    assert (SHUTTING_DOWN.status, SHUTTING_DOWN.code) == (503, "shutting_down")
    assert not admission.grace_over


async def test_drain_returns_when_the_last_open_run_releases_its_slot() -> None:
    admission = Admission(limits(shutdown_grace=5.0))
    admission.admit("a")
    asyncio.get_running_loop().call_later(0.02, admission.release, "a")
    assert await asyncio.wait_for(admission.drain(), 1.0) is True
    assert not admission.grace_over


async def test_drain_ends_the_grace_period_after_shutdown_grace_seconds() -> None:
    admission = Admission(limits(shutdown_grace=0.02))
    admission.admit("a")
    assert await asyncio.wait_for(admission.drain(), 1.0) is False
    assert admission.grace_over
    assert admission.active == 1  # ending what is left is the caller's


def test_drain_on_signals_leaves_signals_alone_off_the_main_thread(signals_restored: None) -> None:
    before = signal.getsignal(signal.SIGTERM)

    async def never() -> None:
        raise AssertionError("drained")

    failures: list[BaseException] = []

    def install() -> None:
        try:
            drain_on_signals(never)  # no loop runs here: only the main thread installs
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=install)
    thread.start()
    thread.join()
    assert failures == []
    assert signal.getsignal(signal.SIGTERM) is before


async def test_drain_on_signals_starts_the_drain_then_calls_the_previous_handler(
    signals_restored: None,
) -> None:
    calls: list[Any] = []
    drained = asyncio.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))

    async def drain() -> None:
        drained.set()

    drain_on_signals(drain)
    signal.raise_signal(signal.SIGTERM)
    await asyncio.wait_for(drained.wait(), 1.0)
    assert calls == [signal.SIGTERM]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_drain_on_signals_handles_sigterm_and_sigint(
    sig: signal.Signals, signals_restored: None
) -> None:
    signal.signal(sig, signal.SIG_IGN)
    drained = asyncio.Event()

    async def drain() -> None:
        drained.set()

    drain_on_signals(drain)
    signal.raise_signal(sig)
    await asyncio.wait_for(drained.wait(), 1.0)
