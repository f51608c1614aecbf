"""What a server process costs, read from /proc: CPU seconds and resident memory."""

from __future__ import annotations

import os

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of every thread of ``pid`` so far (clock-tick resolution)."""
    return sum(cpu_split(pid))


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU time of every thread of ``pid`` so far, apart.

    System time is what the kernel spent for the process: its socket reads and writes, its
    waits; callgrind's instruction counts (:mod:`bench.instructions`) leave it out.
    """
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # After "pid (comm)": state is fields[0], utime fields[11], stime fields[12].
    return int(fields[11]) / _TICKS, int(fields[12]) / _TICKS


def context_switches(pid: int) -> int:
    """Context switches of every live thread of ``pid`` so far, voluntary and not.

    A process that hands work to threads and back (DSPy's ``asyncio.to_thread`` calls) or
    waits in ``epoll`` pays one per hand-over or wake-up; on a VM each is costly.
    """
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
        except FileNotFoundError:  # the thread ended meanwhile
            continue
    return total


def write_calls(pid: int) -> int:
    """Calls of the ``write(2)`` family by every thread of ``pid`` so far (``syscw``).

    One per chunk a uvloop transport writes to a socket (libuv writes with ``write`` and
    ``writev``), so it counts the writes to clients and to the LM of a service on uvloop;
    asyncio's own loop sends with ``send(2)``, which the kernel does not count here.
    """
    with open(f"/proc/{pid}/io", encoding="ascii") as io:
        for line in io:
            if line.startswith("syscw:"):
                return int(line.split()[1])
    raise RuntimeError(f"no syscw for process {pid}")


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` now."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def threads(pid: int) -> int:
    """Number of threads of ``pid`` now."""
    return len(os.listdir(f"/proc/{pid}/task"))
