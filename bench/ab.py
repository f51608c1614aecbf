"""``python -m bench.ab``: variants of the generated service, A/B measured in one run.

    .venv/bin/python -m bench.ab                                   # the suite's experiments
    .venv/bin/python -m bench.ab --program qa old=ref:222c3c8 new=head \\
        fast=head,--loop,uvloop,--http,httptools streamify=inprocess

Each variant is ``name=SOURCE[,option...]``. SOURCE is ``head`` (the program's spec
generated from the template in this checkout), ``ref:<commit>`` (generated from the template
as it was at that commit), ``dir:<path>`` (a generated project edited by hand, for an
experiment) or ``inprocess[:streamify|events|runs]`` (no server: the head project's program
run in-process, with ``dspy.streamify`` alone, the reference of the service-layer target, or
with more of the service's layers around it, as :mod:`bench.inprocess` says; its one option is
``--loop,uvloop``, to compare with a service on uvloop). An option is
an argument for uvicorn (``--loop``, ``uvloop``), ``env:KEY=VALUE``, a variable of the
service's environment, ``python:PATH``, the interpreter that runs the variant (server or
in-process: a virtual environment of another Python version, built by :mod:`bench.venv`),
or ``inline-threads`` (server or in-process: DSPy's ``asyncio.to_thread`` calls run inline,
an experiment that shows what its thread hops cost, :mod:`bench.inline_threads`); ``{otlp}``
in a value is the URL of an OTLP receiver the bench runs (:mod:`bench.otlp_sink`), so
``traced=head,env:OTEL_EXPORTER_OTLP_ENDPOINT={otlp}`` measures the service with tracing on.

The servers run side by side against one fake LM; each round measures every variant in turn,
each going first in turn, with a closed-loop batch of ``--count`` streams at
``--concurrency``. Reported per variant: the median over rounds of the server's CPU per
completed stream, and the median over rounds of its ratio to the first variant measured in the
same round (so that a machine that slows down between rounds moves both sides of a ratio).
Writes ``ab.json`` into ``--out`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "true")

from bench.otlp_sink import running_otlp_sink
from bench.servers import (
    BASE_ENV,
    PROGRAMS,
    ROOT,
    SERVICE_ENV,
    SPECS,
    Project,
    generate_project,
    inprocess_batch,
    lm_env,
)
from bench.suite import measured_batch, say
from dspy_forge.dev.devserver import free_port, service_command, serving
from dspy_forge.dev.fakelm.testing import running_fake_lm

INPROCESS = "inprocess"
INLINE_THREADS = "inline-threads"
PYTHON = "python:"  # an option that names the variant's interpreter
INLINE_THREADS_PATH = Path(__file__).with_name("inline_threads")
OTLP = "{otlp}"  # in an env: value, the URL of the bench's OTLP sink (bench.otlp_sink)


@dataclass(frozen=True)
class Variant:
    """One thing to measure: a project (or the in-process reference) and uvicorn's options."""

    name: str
    source: str  # head, ref:<commit>, dir:<path>, inprocess
    uvicorn_args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    inline_threads: bool = False  # DSPy's thread hops run inline (bench.inline_threads)
    python: str | None = None  # the interpreter, if not the bench's own

    @classmethod
    def parse(cls, text: str) -> Variant:
        name, _, rest = text.partition("=")
        if not name or not rest:
            raise ValueError(f"a variant is name=SOURCE[,uvicorn-arg...], not {text!r}")
        source, *parts = rest.split(",")
        inline = INLINE_THREADS in parts
        pythons = [part[len(PYTHON) :] for part in parts if part.startswith(PYTHON)]
        if len(pythons) > 1 or (pythons and not pythons[0]):
            raise ValueError(f"{name}: give one interpreter, python:PATH")
        parts = [part for part in parts if part != INLINE_THREADS and not part.startswith(PYTHON)]
        args = tuple(part for part in parts if not part.startswith("env:"))
        env = tuple(tuple(part[4:].split("=", 1)) for part in parts if part.startswith("env:"))
        if not source.startswith(("head", INPROCESS, "ref:", "dir:")):
            raise ValueError(f"{name}: unknown source {source!r} (head, ref:X, dir:X, inprocess)")
        if source.startswith(INPROCESS) and (env or (args and args[0] != "--loop")):
            raise ValueError(f"{name}: an in-process variant takes only --loop,asyncio|uvloop")
        python = pythons[0] if pythons else None
        return cls(name, source, args, env, inline, python)  # type: ignore[arg-type]

    @property
    def inprocess(self) -> bool:
        return self.source.startswith(INPROCESS)

    @property
    def layer(self) -> str:
        """For ``inprocess[:layer]``: how much of the service runs around the program."""
        return self.source.partition(":")[2] or "streamify"

    @property
    def traced(self) -> bool:
        """Whether an ``env:`` value names the bench's OTLP sink (``{otlp}``)."""
        return any(OTLP in value for _, value in self.env)

    def environment(self, otlp: str | None = None) -> dict[str, str]:
        """The variant's ``env:`` variables, ``{otlp}`` replaced by the sink's URL."""
        if self.traced and otlp is None:
            raise ValueError(f"{self.name}: {OTLP} needs the bench's OTLP sink")
        return {key: value.replace(OTLP, otlp or OTLP) for key, value in self.env}

    def python_path(self, path: str) -> str:
        """``PYTHONPATH`` for the variant's process: ``path``, and the experiment's folder."""
        return f"{path}:{INLINE_THREADS_PATH}" if self.inline_threads else path

    def inprocess_env(self) -> dict[str, str] | None:
        """For an in-process variant: what its environment adds (``inline-threads``)."""
        return {"PYTHONPATH": self.python_path(str(ROOT))} if self.inline_threads else None

    @property
    def inprocess_args(self) -> tuple[str, ...]:
        """For an in-process variant: its options for :mod:`bench.inprocess` (``--loop``)."""
        return self.uvicorn_args

    def describe(self) -> str:
        options = " ".join(
            [
                *self.uvicorn_args,
                *(f"{k}={v}" for k, v in self.env),
                *([INLINE_THREADS] if self.inline_threads else []),
                *([f"{PYTHON}{self.python}"] if self.python else []),
            ]
        )
        return f"{self.source} {options}".strip()


def project_for(variant: Variant, program: str, out: Path) -> Project:
    """The generated project a variant serves."""
    spec = PROGRAMS[program].spec
    if variant.source == "head" or variant.inprocess:
        return generate_project(spec, out / "head" / spec)
    if variant.source.startswith("dir:"):
        path = Path(variant.source[4:]).resolve()
        package = next(p.name for p in (path / "src").iterdir() if (p / "main.py").exists())
        return Project(path, package)
    return generate_at_ref(variant.source[4:], spec, out / variant.name / spec)


def generate_at_ref(ref: str, spec: str, out: Path) -> Project:
    """``specs/<spec>.yaml`` generated from the template as it was at commit ``ref``."""
    import shutil

    from bench.servers import EXAMPLE_TOOLS
    from dspy_forge.render.generate import generate
    from dspy_forge.render.template import TemplateSource
    from dspy_forge.spec.loader import load_spec

    loaded = load_spec(SPECS / f"{spec}.yaml")
    out = out.resolve()
    if out.exists():
        shutil.rmtree(out)  # a project of an earlier run
    path = generate(loaded, out, source=TemplateSource(str(ROOT), ref, str(ROOT)))
    if (EXAMPLE_TOOLS / spec).is_dir():
        shutil.copytree(
            EXAMPLE_TOOLS / spec, path / "src" / loaded.model.package / "tools", dirs_exist_ok=True
        )
    return Project(path, loaded.model.package)


@contextlib.contextmanager
def pinned(cpus: set[int] | None) -> Any:
    """Run on ``cpus`` for the block (a child started in it inherits them), then as before."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def measure(
    variants: list[Variant],
    program: str,
    *,
    concurrency: int,
    count: int,
    rounds: int,
    out: Path,
    scenario: str = "delay-2ms",
    pin: bool = True,
) -> dict[str, Any]:
    """Every variant, ``rounds`` times, in a rotated order; the figures and their medians.

    With ``pin`` (and two cores or more), the servers (and the in-process reference) run on
    the last core, this process (the load client) and the fake LM on the others, so that a
    variant's CPU per stream does not move with how the scheduler mixes them.
    """
    out.mkdir(parents=True, exist_ok=True)
    cores = sorted(os.sched_getaffinity(0))
    pin = pin and len(cores) >= 2
    server_core, client_cores = {cores[-1]}, set(cores[:-1])
    if pin:
        os.sched_setaffinity(0, client_cores)  # the fake LM, started below, inherits it
    projects = {v.name: project_for(v, program, out / "ab-projects") for v in variants}
    runs: list[dict[str, dict[str, Any]]] = []
    with (
        (out / "ab-servers.log").open("wb") as log,
        running_fake_lm() as fake,
        contextlib.ExitStack() as stack,
    ):
        sink = stack.enter_context(running_otlp_sink()) if any(v.traced for v in variants) else None
        api_base = fake.scenario_base(scenario)
        env = {**BASE_ENV, **lm_env(api_base), **SERVICE_ENV}
        servers: dict[str, Any] = {}
        for v in variants:
            if v.inprocess:
                continue
            p = projects[v.name]
            host, port = "127.0.0.1", free_port()
            command = service_command(p.package, host, port, *v.uvicorn_args, python=v.python)
            if pin:
                command = ["taskset", "-c", str(cores[-1]), *command]
            servers[v.name] = stack.enter_context(
                serving(
                    command,
                    f"http://{host}:{port}",
                    cwd=p.path,
                    env={
                        "PYTHONPATH": v.python_path(str(p.path / "src")),
                        **env,
                        **v.environment(sink.url if sink else None),
                    },
                    log=log,
                )
            )
        for srv in servers.values():  # imports, first-request caches
            measured_batch(srv.process.pid, srv.url, program, 1, 1, first_index=10_000)
            measured_batch(srv.process.pid, srv.url, program, 20, 10, first_index=10_100)
        first = 20_000
        for number in range(rounds):
            shift = number % len(variants)
            order = variants[shift:] + variants[:shift]
            this_round: dict[str, dict[str, Any]] = {}
            for v in order:
                if v.inprocess:
                    with pinned(server_core if pin else None):
                        batch = inprocess_batch(
                            projects[v.name],
                            program,
                            api_base,
                            count,
                            concurrency,
                            "--layer",
                            v.layer,
                            *v.inprocess_args,
                            env=v.inprocess_env(),
                            python=v.python,
                        )
                    completed = max(1, batch["completed"])
                    figures = {
                        "cpu_ms_per_stream": 1000 * batch["cpu"] / completed,
                        "system_ms_per_stream": 1000 * batch["cpu_system"] / completed,
                        "switches_per_stream": batch["context_switches"] / completed,
                        "writes_per_stream": batch["write_calls"] / completed,
                        "completed": batch["completed"],
                        "tokens_per_stream": batch["tokens"] / completed,
                        "errors": 0,
                    }
                else:
                    srv = servers[v.name]
                    figures = measured_batch(
                        srv.process.pid, srv.url, program, count, concurrency, first
                    )
                    first += count
                this_round[v.name] = figures
                say(
                    f"ab round {number + 1}/{rounds} {v.name}: "
                    f"{figures['cpu_ms_per_stream']:.2f} ms/stream, "
                    f"{figures['tokens_per_stream']:.1f} tokens, {figures['errors']} errors"
                )
            runs.append(this_round)
    # Read once the servers have stopped: a traced one exports its last spans as it stops.
    otlp_received = {"requests": sink.requests, "bytes": sink.bytes} if sink else None
    reference = variants[0].name
    summary = {}
    for v in variants:
        values = [r[v.name]["cpu_ms_per_stream"] for r in runs]
        ratios = [r[v.name]["cpu_ms_per_stream"] / r[reference]["cpu_ms_per_stream"] for r in runs]
        summary[v.name] = {
            "source": v.describe(),
            "cpu_ms_per_stream": statistics.median(values),
            "spread": [min(values), max(values)],
            "ratio": statistics.median(ratios),
            "system_ms_per_stream": statistics.median(
                r[v.name]["system_ms_per_stream"] for r in runs
            ),
            "switches_per_stream": statistics.median(
                r[v.name]["switches_per_stream"] for r in runs
            ),
            "writes_per_stream": statistics.median(r[v.name]["writes_per_stream"] for r in runs),
            "tokens_per_stream": statistics.median(r[v.name]["tokens_per_stream"] for r in runs),
            "errors": sum(r[v.name]["errors"] for r in runs),
        }
    if pin:
        os.sched_setaffinity(0, set(cores))
    return {
        "program": program,
        "pinned": pin,
        "concurrency": concurrency,
        "count": count,
        "rounds": rounds,
        "scenario": scenario,
        "reference": reference,
        "runs": runs,
        "summary": summary,
        "otlp_received": otlp_received,
    }


def table(result: dict[str, Any]) -> str:
    """The A/B result as a markdown table."""
    caption = (
        f"{result['program']}, c={result['concurrency']}, fake LM `{result['scenario']}`, "
        f"{result['count']} streams a batch, "
        f"{result['rounds']} rounds; ratio to `{result['reference']}` in the same round, median"
    )
    return variants_table(
        caption,
        "CPU ms per stream",
        "cpu_ms_per_stream",
        result["summary"],
        parts=(
            ("of which system", "system_ms_per_stream"),
            ("context switches", "switches_per_stream"),
            ("writes", "writes_per_stream"),
        ),
    )


def variants_table(
    caption: str,
    figure: str,
    key: str,
    summary: dict[str, Any],
    parts: tuple[tuple[str, str], ...] = (),
) -> str:
    """One row per variant: its ``key`` figure (median; min-max), ratio, tokens and errors.

    The table of ``bench.ab`` (CPU time) and of ``bench.instructions`` (instructions).
    ``parts``: more columns, each a heading and a key of medians (the system time of the CPU
    time, context switches), shown where a variant has them.
    """
    heading = "".join(f" {title} (median) |" for title, _ in parts)
    rule = "---|" * len(parts)
    lines = [
        caption,
        "",
        f"| variant | what | {figure} (median; min-max) |{heading} ratio | tokens | errors |",
        f"|---|---|---|{rule}---|---|---|",
    ]
    for name, s in summary.items():
        low, high = s["spread"]
        cell = ""
        for _, part in parts:
            value = s.get(part)
            cell += " - |" if value is None else f" {value:.2f} |"
        lines.append(
            f"| {name} | `{s['source']}` | {s[key]:.2f} ({low:.2f}-{high:.2f}) |{cell} "
            f"{s['ratio']:.2f}x | {s['tokens_per_stream']:.1f} | {s['errors']} |"
        )
    return "\n".join(lines)


def variant_parser(
    prog: str, description: str, *, concurrency: int, count: int
) -> argparse.ArgumentParser:
    """The command line of ``bench.ab`` and ``bench.instructions``: variants, and a batch."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("variants", nargs="+", help="name=SOURCE[,option...]")
    parser.add_argument("--program", choices=sorted(PROGRAMS), default="qa")
    parser.add_argument("--concurrency", type=int, default=concurrency)
    parser.add_argument("--count", type=int, default=count, help="streams a batch")
    parser.add_argument("--out", type=Path, default=Path("out/bench"))
    return parser


def parsed_variants(parser: argparse.ArgumentParser, texts: list[str]) -> list[Variant]:
    """The variants named on the command line; a usage error names a wrong one."""
    try:
        return [Variant.parse(text) for text in texts]
    except ValueError as exc:
        parser.error(str(exc))


def main(argv: list[str] | None = None) -> int:
    parser = variant_parser(
        "python -m bench.ab", __doc__.splitlines()[0], concurrency=50, count=300
    )
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument(
        "--no-pin", action="store_true", help="let the scheduler place the servers and the client"
    )
    parser.add_argument(
        "--scenario",
        default="delay-2ms",
        help="the fake LM's scenario (delay-200ms: the pace bench.instructions counts at)",
    )
    args = parser.parse_args(argv)
    variants = parsed_variants(parser, args.variants)
    result = measure(
        variants,
        args.program,
        concurrency=args.concurrency,
        count=args.count,
        rounds=args.rounds,
        out=args.out.resolve(),
        scenario=args.scenario,
        pin=not args.no_pin,
    )
    (args.out / "ab.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
