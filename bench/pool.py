"""``python -m bench.pool``: 1,000 streams in flight at once, and the LM's connection pool.

    .venv/bin/python -m bench.pool                         # 1000 streams, pools 100 and 1000
    .venv/bin/python -m bench.pool --streams 200 --pools 100,200 --pace-ms 50

One generated service (specs/qa.yaml, one uvicorn worker) on the fake LM, for each pool size
(``LM_MAX_CONNECTIONS``): ``--streams`` clients open their streams at once and read them to the
end. The fake LM paces every token (``delay-<pace>ms``), so the streams overlap, and reports the
most streams it had open at once (``streams_open_peak``). The service's admission limit is lifted
(``MAX_CONCURRENT_RUNS``); uvicorn runs with no ``--limit-concurrency`` (its default). Reported:
that peak, the streams that completed with every token (the tokens' text is the final answer),
tokens delivered, and the p50/p99 gap between tokens at the client. Writes ``pool.json`` and
prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "true")

from bench import load
from bench.servers import BASE_ENV, PROGRAMS, SERVICE_ENV, generate_project, lm_env
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


def measure(project: Any, fake: Any, pool: int, streams: int, pace_ms: int, log: Any) -> dict:
    """One pool size: ``streams`` at once through one service; the fake LM's and client's view."""
    scenario = f"delay-{pace_ms}ms"
    env = {
        **BASE_ENV,
        **lm_env(fake.scenario_base(scenario)),
        **SERVICE_ENV,
        "LM_MAX_CONNECTIONS": str(pool),
    }
    final_field = PROGRAMS[PROGRAM].final_field
    with running_service(project.path, project.package, env, log=log) as service:
        # One stream first, so that the service has built its LM and engine.
        load.run(load.closed_loop(service.url, path_of(PROGRAM), 1, 1, body, final_field))
        fake.reset()
        result = load.run(
            load.closed_loop(service.url, path_of(PROGRAM), streams, streams, body, final_field)
        )
        counters = fake.stats()["scenarios"][scenario]
    whole = [s for s in result.streams if s.ok and s.final is not None and s.text == s.final]
    gaps = result.gaps()
    p50, p99 = load.percentile(gaps, 50), load.percentile(gaps, 99)
    return {
        "pool": pool,
        "streams": streams,
        "pace_ms": pace_ms,
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


def table(rows: list[dict], load_average: str) -> str:
    lines = [
        f"Streams at once: {rows[0]['streams']}, a token every {rows[0]['pace_ms']} ms at the "
        f"fake LM; load average before the run: {load_average}.",
        "",
        "| LM_MAX_CONNECTIONS | upstream streams open at once (peak) | streams complete, "
        "every token | answer tokens at the client / expected | gap p50 | gap p99 | wall |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['pool']} | {r['upstream_peak']} | {r['whole']} / {r['streams']} | "
            f"{r['tokens']} / {r['tokens_expected']} | {r['gap_p50_ms']} ms | "
            f"{r['gap_p99_ms']} ms | {r['wall_s']} s |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pool", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--pools", default="100,1000", help="LM_MAX_CONNECTIONS values")
    parser.add_argument("--pace-ms", type=int, default=100, help="the fake LM's token delay")
    parser.add_argument("--out", type=Path, default=Path("out/bench-pool"))
    args = parser.parse_args(argv)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    limit = raise_open_files(4 * args.streams + 1024)
    say(f"open-file limit {limit}")
    load_average = " ".join(f"{x:.2f}" for x in os.getloadavg())
    project = generate_project(PROGRAMS[PROGRAM].spec, args.out / "qa")
    rows = []
    with (args.out / "servers.log").open("wb") as log, running_fake_lm() as fake:
        for pool in (int(p) for p in args.pools.split(",")):
            say(f"pool {pool}: {args.streams} streams")
            row = measure(project, fake, pool, args.streams, args.pace_ms, log)
            say(json.dumps(row))
            rows.append(row)
            time.sleep(1)
    report = table(rows, load_average)
    results = {"rows": rows, "load_average": load_average, "machine": machine()}
    (args.out / "pool.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
