"""``python -m bench.instructions``: instructions per stream, counted by callgrind, per variant.

    .venv/bin/python -m bench.instructions --program qa streamify=inprocess \\
        events=inprocess:events runs=inprocess:runs service=head

CPU time per stream moves by a quarter from one round to the next on a shared 2-core VM, and
``perf`` has no instruction counter there; a difference of 5% between two variants is lost
in that noise. ``valgrind --tool=callgrind`` counts the instructions a process executes,
which do not depend on what else the machine runs, so two variants compare to a percent.
It is about 50 times slower, so a batch is small (``--count`` streams at ``--concurrency``).

The variants are :mod:`bench.ab`'s (``head``, ``ref:X``, ``dir:X``, ``inprocess[:layer]``,
with uvicorn options and ``env:`` variables). For a server, callgrind starts with counting
off; the server is warmed up, then counting is on for exactly one batch of the load client
(``callgrind_control -i on/off``, then a dump). An in-process variant counts everything from
its start, so it runs twice, with ``--warm`` and with ``--warm + --count`` streams, and the
difference is the ``--count`` streams' share.

``--cache-sim``: callgrind also simulates the first-level and last-level caches (a model of
this CPU's, from ``cpuid``; not the real ones, which this VM's ``perf`` cannot count), and the
table gains their misses per stream and callgrind's estimate of cycles (``Ir + 10 L1m +
100 LLm``, as ``callgrind_annotate`` weighs them): a larger working set running at a lower rate
shows there, where instructions alone do not.

Caveat: under callgrind the process is slow, so the fake LM's tokens pile up and a reader
finds more of them at a time than at full speed; per-batch costs (one write for several
events) weigh less here than in the CPU tables.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "true")

from bench import load
from bench.ab import Variant, parsed_variants, project_for, variant_parser, variants_table
from bench.otlp_sink import running_otlp_sink
from bench.servers import BASE_ENV, SERVICE_ENV, Project, inprocess_batch, lm_env
from bench.suite import body, measured_batch, path_of, say
from dspy_forge.dev.devserver import free_port, service_command, serving
from dspy_forge.dev.fakelm.testing import running_fake_lm

# Counts include every thread (DSPy's, uvicorn's); a server's start with counting off.
CALLGRIND_ALL = ["valgrind", "--tool=callgrind", "--dump-instr=no"]
CALLGRIND = [*CALLGRIND_ALL, "--instr-atstart=no"]
CACHE_SIM = ["--cache-sim=yes"]
_EVENTS = re.compile(rb"^events: (.+)$", re.MULTILINE)
_TOTALS = re.compile(rb"^totals: (.+)$", re.MULTILINE)
# Simulated misses by level (callgrind's event names), and their weights in cycles.
L1_MISSES, LL_MISSES = ("I1mr", "D1mr", "D1mw"), ("ILmr", "DLmr", "DLmw")
L1_CYCLES, LL_CYCLES = 10, 100


def counts_in(path: Path) -> dict[str, int]:
    """The events a callgrind file counts (``Ir``, and misses with ``--cache-sim``): its
    ``totals`` line, named by its ``events`` line (a dump's ``summary`` is 0)."""
    text = path.read_bytes()
    events, totals = _EVENTS.search(text), _TOTALS.search(text)
    if events is None or totals is None:
        raise RuntimeError(f"{path}: no events or totals line")
    names = events[1].decode().split()
    return dict(zip(names, (int(value) for value in totals[1].split()), strict=False))


def callgrind_control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=120)


def server_counts(
    variant: Variant,
    project: Project,
    program: str,
    api_base: str,
    *,
    count: int,
    concurrency: int,
    batches: int,
    out: Path,
    log: Any,
    otlp: str | None = None,
    cache_sim: bool = False,
) -> list[dict[str, Any]]:
    """``batches`` counted batches of one variant's server, each with its instructions."""
    host, port = "127.0.0.1", free_port()
    prefix = out / f"callgrind-{variant.name}"
    for old in out.glob(f"{prefix.name}.*"):
        old.unlink()
    command = [
        *CALLGRIND,
        *(CACHE_SIM if cache_sim else []),
        f"--callgrind-out-file={prefix}.%p",
        *service_command(project.package, host, port, *variant.uvicorn_args),
    ]
    env = {
        "PYTHONPATH": variant.python_path(str(project.path / "src")),
        **BASE_ENV,
        **lm_env(api_base),
        **SERVICE_ENV,
        **variant.environment(otlp),
    }
    url = f"http://{host}:{port}"
    figures = []
    with serving(command, url, cwd=project.path, env=env, log=log, startup_timeout=900) as srv:
        pid = str(srv.process.pid)
        # Imports and first-request caches, uncounted.
        load.run(load.closed_loop(url, path_of(program), 4, 2, body, None))
        first = 1000  # distinct questions: no batch repeats one (and DSPy's cache is off)
        for number in range(batches):
            callgrind_control("--zero", pid)
            callgrind_control("--instr=on", pid)
            summary = measured_batch(srv.process.pid, url, program, count, concurrency, first)
            first += count
            callgrind_control("--instr=off", pid)
            dumps_before = set(out.glob(f"{prefix.name}.*"))
            callgrind_control("--dump", pid)
            dump = _newest(out, prefix.name, dumps_before)
            figures.append(_figures(counts_in(dump), summary["completed"], summary))
            say(f"instructions {variant.name} batch {number + 1}: {_fmt(figures[-1])}")
    return figures


def _newest(out: Path, name: str, before: set[Path]) -> Path:
    give_up = time.monotonic() + 60
    while time.monotonic() < give_up:
        new = sorted(set(out.glob(f"{name}.*")) - before, key=lambda p: p.stat().st_mtime)
        if new and new[-1].stat().st_size:
            time.sleep(0.5)  # the dump is written by the time callgrind_control returns
            return new[-1]
        time.sleep(0.2)
    raise RuntimeError(f"callgrind wrote no dump for {name}")


def inprocess_counts(
    variant: Variant,
    project: Project,
    program: str,
    api_base: str,
    *,
    count: int,
    concurrency: int,
    warm: int,
    out: Path,
    cache_sim: bool = False,
) -> list[dict[str, Any]]:
    """One figure: the instructions of ``count`` in-process runs, by difference of two runs."""
    totals = []
    for runs in (warm, warm + count):
        path = out / f"callgrind-{variant.name}-{runs}.out"
        batch = inprocess_batch(
            project,
            program,
            api_base,
            runs,
            concurrency,
            "--layer",
            variant.layer,
            "--no-warm-up",
            *variant.inprocess_args,
            env=variant.inprocess_env(),
            wrapper=[
                *CALLGRIND_ALL,
                *(CACHE_SIM if cache_sim else []),
                f"--callgrind-out-file={path}",
            ],
        )
        totals.append((counts_in(path), batch))
    (low, low_batch), (high, high_batch) = totals
    completed = high_batch["completed"] - low_batch["completed"]
    summary = {
        "completed": completed,
        "tokens_per_stream": (high_batch["tokens"] - low_batch["tokens"]) / max(1, completed),
        "errors": count - completed,
    }
    figure = _figures({k: high[k] - low.get(k, 0) for k in high}, completed, summary)
    say(f"instructions {variant.name}: {_fmt(figure)}")
    return [figure]


def _figures(counts: dict[str, int], completed: int, summary: dict[str, Any]) -> dict[str, Any]:
    streams = max(1, completed)
    figures = {
        "instructions": counts["Ir"],
        "completed": completed,
        "minstr_per_stream": counts["Ir"] / streams / 1e6,
        "tokens_per_stream": summary["tokens_per_stream"],
        "errors": summary["errors"],
    }
    if all(name in counts for name in (*L1_MISSES, *LL_MISSES)):
        l1 = sum(counts[name] for name in L1_MISSES)
        ll = sum(counts[name] for name in LL_MISSES)
        figures["k_l1_misses_per_stream"] = l1 / streams / 1e3
        figures["k_ll_misses_per_stream"] = ll / streams / 1e3
        cycles = counts["Ir"] + L1_CYCLES * l1 + LL_CYCLES * ll
        figures["mcycles_per_stream"] = cycles / streams / 1e6
    return figures


def _fmt(figure: dict[str, Any]) -> str:
    return (
        f"{figure['minstr_per_stream']:.2f} M instructions/stream, {figure['completed']} streams, "
        f"{figure['tokens_per_stream']:.1f} tokens, {figure['errors']} errors"
    )


def measure(
    variants: list[Variant],
    program: str,
    *,
    count: int,
    concurrency: int,
    batches: int,
    out: Path,
    scenario: str = "delay-2ms",
    cache_sim: bool = False,
) -> dict[str, Any]:
    """Every variant's instructions per stream; ratios to the first variant.

    With ``cache_sim``, also each variant's simulated cache misses and estimated cycles.
    """
    out.mkdir(parents=True, exist_ok=True)
    projects = {v.name: project_for(v, program, out / "ab-projects") for v in variants}
    counted: dict[str, list[dict[str, Any]]] = {}
    with (
        (out / "instructions-servers.log").open("wb") as log,
        running_fake_lm() as fake,
        running_otlp_sink() as sink,
    ):
        api_base = fake.scenario_base(scenario)
        for v in variants:
            if v.inprocess:
                counted[v.name] = inprocess_counts(
                    v,
                    projects[v.name],
                    program,
                    api_base,
                    count=count,
                    concurrency=concurrency,
                    warm=max(2, concurrency),
                    out=out,
                    cache_sim=cache_sim,
                )
            else:
                counted[v.name] = server_counts(
                    v,
                    projects[v.name],
                    program,
                    api_base,
                    count=count,
                    concurrency=concurrency,
                    batches=batches,
                    out=out,
                    log=log,
                    otlp=sink.url,
                    cache_sim=cache_sim,
                )
        exported = {"requests": sink.requests, "bytes": sink.bytes}  # the traced variants' spans
    reference = statistics.median(f["minstr_per_stream"] for f in counted[variants[0].name])
    summary = {}
    for v in variants:
        per_stream = [f["minstr_per_stream"] for f in counted[v.name]]
        summary[v.name] = {
            "source": v.describe(),
            "minstr_per_stream": statistics.median(per_stream),
            "spread": [min(per_stream), max(per_stream)],
            "ratio": statistics.median(per_stream) / reference,
            "tokens_per_stream": statistics.median(f["tokens_per_stream"] for f in counted[v.name]),
            "errors": sum(f["errors"] for f in counted[v.name]),
        }
        if cache_sim:
            for key in ("k_l1_misses_per_stream", "k_ll_misses_per_stream", "mcycles_per_stream"):
                summary[v.name][key] = statistics.median(f[key] for f in counted[v.name])
    if cache_sim:
        cycles = summary[variants[0].name]["mcycles_per_stream"]
        for v in variants:
            summary[v.name]["cycles_ratio"] = summary[v.name]["mcycles_per_stream"] / cycles
    return {
        "program": program,
        "count": count,
        "concurrency": concurrency,
        "batches": batches,
        "scenario": scenario,
        "cache_sim": cache_sim,
        "reference": variants[0].name,
        "batches_counted": counted,
        "otlp_received": exported,
        "summary": summary,
    }


def table(result: dict[str, Any]) -> str:
    """The counts as a markdown table."""
    caption = (
        f"{result['program']}, {result['count']} streams at c={result['concurrency']} a batch, "
        f"callgrind; ratio to `{result['reference']}`"
    )
    counts = variants_table(
        caption, "M instructions per stream", "minstr_per_stream", result["summary"]
    )
    if not result.get("cache_sim"):
        return counts
    lines = [
        counts,
        "",
        f"Simulated caches ({result['program']}; callgrind's model of this CPU's; estimated "
        f"cycles = Ir + {L1_CYCLES} L1 misses + {LL_CYCLES} last-level misses)",
        "",
        "| variant | M instructions | K L1 misses | K last-level misses | M cycles (estimated) "
        "| cycles ratio | instructions ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in result["summary"].items():
        lines.append(
            f"| {name} | {s['minstr_per_stream']:.2f} | {s['k_l1_misses_per_stream']:.1f} "
            f"| {s['k_ll_misses_per_stream']:.2f} | {s['mcycles_per_stream']:.2f} "
            f"| {s['cycles_ratio']:.2f}x | {s['ratio']:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = variant_parser(
        "python -m bench.instructions", __doc__.splitlines()[0], concurrency=10, count=20
    )
    parser.add_argument("--batches", type=int, default=2, help="counted batches per server")
    parser.add_argument(
        "--scenario",
        default="delay-2ms",
        help="the fake LM's scenario (a slow one, delay-200ms, keeps a counted server caught up)",
    )
    parser.add_argument(
        "--cache-sim",
        action="store_true",
        help="simulate the caches too: misses and estimated cycles per stream",
    )
    args = parser.parse_args(argv)
    variants = parsed_variants(parser, args.variants)
    args.out.mkdir(parents=True, exist_ok=True)
    result = measure(
        variants,
        args.program,
        count=args.count,
        concurrency=args.concurrency,
        batches=args.batches,
        out=args.out.resolve(),
        scenario=args.scenario,
        cache_sim=args.cache_sim,
    )
    (args.out / "instructions.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
