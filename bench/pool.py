"""``python -m bench.pool``: 1,000 streams in flight at once, and the LM's connection pool.

    .venv/bin/python -m bench.pool                         # 1000 streams, pools 100 and 1000
    .venv/bin/python -m bench.pool --streams 200 --pools 100,200 --pace-ms 50
    .venv/bin/python -m bench.pool --pools 1000 --flush 0,0.05   # STREAM_FLUSH_INTERVAL too

One generated service (specs/qa.yaml, one uvicorn worker) on the fake LM, for each pool size
(``LM_MAX_CONNECTIONS``): ``--streams`` clients open their streams at once and read them to the
end. The fake LM paces every token (``delay-<pace>ms``), so the streams overlap, and reports the
most streams it had open at once (``streams_open_peak``). The service's admission limit is lifted
(``MAX_CONCURRENT_RUNS``); uvicorn runs with no ``--limit-concurrency`` (its default). Reported:
that peak, the streams that completed with every token (the tokens' text is the final answer),
tokens delivered, the p50/p99 gap between tokens at the client, and the service's CPU time and
write calls per stream; ``--flush`` repeats each pool size for each ``STREAM_FLUSH_INTERVAL``
(the writes to 1,000 clients are where it pays most). The service runs on the last
core, the client and the fake LM on the others (``--no-pin``: anywhere). ``--inprocess`` adds the
same streams run in-process with ``dspy.streamify`` alone on the service's core: DSPy's own gaps,
the floor of the service's. Writes ``pool.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "true")

from bench import load
from bench.ab import pinned
from bench.proc import cpu_seconds, write_calls
from bench.servers import BASE_ENV, PROGRAMS, SERVICE_ENV, generate_project, inprocess_batch, lm_env
from bench.suite import body, machine, path_of, say
from dspy_forge.dev.devserver import running_service
from dspy_forge.dev.fakelm.scenario import DEFAULT_WORDS
from dspy_forge.dev.fakelm.testing import running_fake_lm

PROGRAM = "qa"


def raise_open_files(needed: int) -> int:
    """Raise this process's open-file limit (the servers inherit it) to ``needed``, if allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def measure(
    project: Any,
    fake: Any,
    pool: int,
    streams: int,
    pace_ms: int,
    log: Any,
    server_core: set[int] | None,
    flush: float = 0.0,
) -> dict:
    """One pool size: ``streams`` at once through one service; the fake LM's and client's view.

    ``server_core``: the service runs there, apart from this process (the client) and the fake
    LM, so that a gap at the client is the service's and not a share of the client's core.
    """
    scenario = f"delay-{pace_ms}ms"
    env = {
        **BASE_ENV,
        **lm_env(fake.scenario_base(scenario)),
        **SERVICE_ENV,
        "LM_MAX_CONNECTIONS": str(pool),
        "STREAM_FLUSH_INTERVAL": str(flush),
    }
    final_field = PROGRAMS[PROGRAM].final_field
    with contextlib.ExitStack() as stack:
        with pinned(server_core):  # the service inherits the core it is started on
            service = stack.enter_context(
                running_service(project.path, project.package, env, log=log)
            )
        # One stream first, so that the service has built its LM and engine.
        load.run(load.closed_loop(service.url, path_of(PROGRAM), 1, 1, body, final_field))
        fake.reset()
        pid = service.process.pid
        cpu0, writes0 = cpu_seconds(pid), write_calls(pid)
        result = load.run(
            load.closed_loop(service.url, path_of(PROGRAM), streams, streams, body, final_field)
        )
        cpu, writes = cpu_seconds(pid) - cpu0, write_calls(pid) - writes0
        counters = fake.stats()["scenarios"][scenario]
    whole = [s for s in result.streams if s.ok and s.final is not None and s.text == s.final]
    gaps = result.gaps()
    p50, p99 = load.percentile(gaps, 50), load.percentile(gaps, 99)
    completed = max(1, result.completed)
    return {
        "pool": pool,
        "flush_s": flush,
        "streams": streams,
        "pace_ms": pace_ms,
        "cpu_ms_per_stream": round(1000 * cpu / completed, 2),
        "writes_per_stream": round(writes / completed, 1),
        "upstream_peak": counters["streams_open_peak"],
        "upstream_completed": counters["streams_completed"],
        "completed": result.completed,
        "whole": len(whole),
        "errors": result.error_kinds(),
        "tokens": sum(s.tokens for s in result.streams),
        "tokens_expected": DEFAULT_WORDS * streams,  # the answer's words, one token each
        "chunks_sent": counters["chunks_sent"],
        "gap_p50_ms": None if p50 is None else round(1000 * p50, 1),
        "gap_p99_ms": None if p99 is None else round(1000 * p99, 1),
        "wall_s": round(result.wall, 2),
    }


def measure_inprocess(
    project: Any, fake: Any, pool: int, streams: int, pace_ms: int, server_core: set[int] | None
) -> dict:
    """The same streams in-process: ``dspy.streamify`` alone, on the service's core (the floor)."""
    scenario = f"delay-{pace_ms}ms"
    fake.reset()
    with pinned(server_core):
        batch = inprocess_batch(
            project,
            PROGRAM,
            fake.scenario_base(scenario),
            streams,
            streams,
            env={"LM_MAX_CONNECTIONS": str(pool)},
        )
    counters = fake.stats()["scenarios"][scenario]
    completed = max(1, batch["completed"])
    return {
        "pool": pool,
        "server": "inprocess",
        "streams": streams,
        "pace_ms": pace_ms,
        "cpu_ms_per_stream": round(1000 * batch["cpu"] / completed, 2),
        "writes_per_stream": round(batch["write_calls"] / completed, 1),
        "upstream_peak": counters["streams_open_peak"],
        "completed": batch["completed"],
        "whole": batch["completed"],  # every run's prediction, its tokens counted below
        "errors": {},
        "tokens": batch["tokens"],
        "tokens_expected": DEFAULT_WORDS * streams,
        "gap_p50_ms": None if batch["gap_p50_s"] is None else round(1000 * batch["gap_p50_s"], 1),
        "gap_p99_ms": None if batch["gap_p99_s"] is None else round(1000 * batch["gap_p99_s"], 1),
        "wall_s": round(batch["wall"], 2),
    }


def table(rows: list[dict], load_average: str) -> str:
    lines = [
        f"Streams at once: {rows[0]['streams']}, a token every {rows[0]['pace_ms']} ms at the "
        f"fake LM; load average before the run: {load_average}.",
        "",
        "| what | LM_MAX_CONNECTIONS | STREAM_FLUSH_INTERVAL | upstream streams open at once "
        "(peak) | streams complete, every token | answer tokens at the client / expected | "
        "gap p50 | gap p99 | CPU per stream | writes per stream | wall |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        alone = r.get("server") == "inprocess"
        what = "in-process `streamify`" if alone else "service"
        flush = "-" if alone else f"{r.get('flush_s', 0.0)} s"
        cpu, writes = r.get("cpu_ms_per_stream"), r.get("writes_per_stream")
        lines.append(
            f"| {what} | {r['pool']} | {flush} | {r['upstream_peak']} | "
            f"{r['whole']} / {r['streams']} | {r['tokens']} / {r['tokens_expected']} | "
            f"{r['gap_p50_ms']} ms | {r['gap_p99_ms']} ms | "
            f"{'-' if cpu is None else f'{cpu} ms'} | {'-' if writes is None else writes} | "
            f"{r['wall_s']} s |"
        )
    return "\n".join(lines)


def run_all(
    streams: int,
    pools: list[int],
    pace_ms: int,
    out: Path,
    *,
    alone: bool,
    pin: bool = True,
    flushes: tuple[float, ...] = (0.0,),
) -> dict[str, Any]:
    """Every pool size at every flush interval (and, with ``alone``, the in-process floor at the
    largest pool); the rows."""
    out.mkdir(parents=True, exist_ok=True)
    limit = raise_open_files(4 * streams + 1024)
    say(f"open-file limit {limit}")
    load_average = " ".join(f"{x:.2f}" for x in os.getloadavg())
    project = generate_project(PROGRAMS[PROGRAM].spec, out / "qa")
    rows = []
    cores = sorted(os.sched_getaffinity(0))
    pin = pin and len(cores) >= 2
    server_core = {cores[-1]} if pin else None
    if pin:
        os.sched_setaffinity(0, set(cores[:-1]))  # the client, and the fake LM started below
    try:
        with (out / "pool-servers.log").open("wb") as log, running_fake_lm() as fake:
            for pool in pools:
                for flush in flushes:
                    say(f"pool {pool}, flush {flush} s: {streams} streams")
                    row = measure(project, fake, pool, streams, pace_ms, log, server_core, flush)
                    say(json.dumps(row))
                    rows.append(row)
                    time.sleep(1)
            if alone:
                say(f"in-process, pool {max(pools)}: {streams} streams")
                row = measure_inprocess(project, fake, max(pools), streams, pace_ms, server_core)
                say(json.dumps(row))
                rows.append(row)
    finally:
        if pin:
            os.sched_setaffinity(0, set(cores))
    return {"rows": rows, "load_average": load_average, "pinned": pin}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pool", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--pools", default="100,1000", help="LM_MAX_CONNECTIONS values")
    parser.add_argument("--pace-ms", type=int, default=100, help="the fake LM's token delay")
    parser.add_argument(
        "--flush", default="0", help="STREAM_FLUSH_INTERVAL values, in seconds, each at every pool"
    )
    parser.add_argument("--out", type=Path, default=Path("out/bench-pool"))
    parser.add_argument(
        "--inprocess",
        action="store_true",
        help="also run the streams in-process (dspy.streamify alone) at the largest pool",
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="let the scheduler place the service and the client"
    )
    args = parser.parse_args(argv)
    out = args.out.resolve()
    pools = [int(p) for p in args.pools.split(",")]
    flushes = tuple(float(f) for f in args.flush.split(","))
    results = run_all(
        args.streams,
        pools,
        args.pace_ms,
        out,
        alone=args.inprocess,
        pin=not args.no_pin,
        flushes=flushes,
    )
    results["machine"] = machine()
    (out / "pool.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(table(results["rows"], results["load_average"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
