"""``python -m bench``: run the benchmark suite; ``python -m bench profile``: profile one server.

    .venv/bin/python -m bench                      # the full suite (about 13 min on 2 cores)
    .venv/bin/python -m bench --quick              # the smallest setting (CI smoke test)
    .venv/bin/python -m bench --sections cpu,inprocess --runs 5 --programs qa
    .venv/bin/python -m bench --sections runlog    # the event log (python -m bench.runlog)
    .venv/bin/python -m bench profile --server service --program qa --concurrency 50

The suite writes ``results.json``, ``report.md`` (the tables of docs/benchmarks.md) and
``benchmarks-streams.png`` into ``--out`` (default ``out/bench``), and the servers' logs
into ``--out``/servers.log. See docs/benchmarks.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "true")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["profile"]:
        from bench.profiling import main as profile_main

        return profile_main(argv[1:])

    from bench.report import markdown, plot
    from bench.suite import FULL, QUICK, SECTIONS, Suite, configure, say

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the smallest setting (seconds)")
    parser.add_argument("--runs", type=int, help="runs of each measurement (median taken)")
    parser.add_argument("--programs", help="comma-separated: qa,agent")
    parser.add_argument(
        "--sections",
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all but runlog)",
    )
    parser.add_argument("--servers", help="comma-separated: service,baseline,floor")
    parser.add_argument("--capacity-levels", help="comma-separated stream counts, e.g. 100,1000")
    parser.add_argument("--out", type=Path, default=Path("out/bench"), help="results folder")
    parser.add_argument("--plot", type=Path, help="also write the plot here")
    parser.add_argument("--no-plot", action="store_true", help="skip the matplotlib plot")
    args = parser.parse_args(argv)

    config = configure(
        QUICK if args.quick else FULL,
        runs=args.runs,
        programs=tuple(args.programs.split(",")) if args.programs else None,
        sections=tuple(args.sections.split(",")) if args.sections else None,
        servers=tuple(args.servers.split(",")) if args.servers else None,
        capacity_servers=tuple(args.servers.split(",")) if args.servers else None,
        capacity_levels=(
            tuple(int(n) for n in args.capacity_levels.split(",")) if args.capacity_levels else None
        ),
    )
    unknown = set(config.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "servers.log").open("wb") as log:
        results = Suite(config, args.out, log).run()
    (args.out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    report = markdown(results)
    (args.out / "report.md").write_text(report, encoding="utf-8")
    if not args.no_plot:
        for target in (args.out / "benchmarks-streams.png", args.plot):
            if target is not None and not plot(results, target):
                say("matplotlib is not installed (pip install -e '.[bench]'): no plot")
                break
    print(report)
    say(f"results in {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
