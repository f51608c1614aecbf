"""A generated program run in-process, without a server: the reference for the service layer.

Both commands build the program exactly as the generated service does (the project's own
``build_programs`` with its settings read from the environment, so ``LM_*`` point it at the
fake LM) and print one JSON object.

``run``: ``count`` runs, ``concurrency`` at a time, after a short warm-up; the CPU time of
this process (``resource.getrusage``) per completed run, and each run's time from its start to
its first token (``first_token_s``), and the p50/p99 gap between two tokens of a run (the
``streamify`` layer). ``--layer`` says how much of the
service runs around the program, so the layers' costs can be told apart:

- ``streamify`` (the reference): ``dspy.streamify`` with fresh listeners per run, as the
  service makes them; no HTTP, validation, SSE encoding or event mapping;
- ``events``: the generated ``ServedProgram.events`` (adds the status callback, event
  objects and the completion of streamed fields);
- ``runs``: the generated ``Runs.stream`` with its response body read to the end (adds the
  run's task and queue, limits, metrics, usage tracking and SSE encoding): everything the
  service does except HTTP, routing and request validation.

``capture``: one run with a placeholder question; prints the chat messages of each LM call,
the listened field and the final output, which the floor (:mod:`bench.floor_app`) replays.

    python -m bench.inprocess run --project DIR --package PKG --program qa --count 200 \\
        --concurrency 50 [--layer streamify|events|runs]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import resource
import sys
import time
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "true")

from bench.load import percentile
from bench.proc import write_calls

PLACEHOLDER = "QUESTION-PLACEHOLDER-7f3a"


def cpu_now() -> tuple[float, float, int, int]:
    """This process's user and system CPU time so far, its context switches and writes."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    switches = usage.ru_nvcsw + usage.ru_nivcsw
    return usage.ru_utime, usage.ru_stime, switches, write_calls(os.getpid())


def served_program(project: str, package: str, name: str) -> Any:
    """The generated ``ServedProgram`` called ``name``, built as the service builds it."""
    sys.path.insert(0, f"{project}/src")
    programs = importlib.import_module(f"{package}.programs")
    settings = importlib.import_module(f"{package}.settings")
    return getattr(programs.build_programs(settings.get_settings()), name)


async def run_batch(
    served: Any, package: str, count: int, concurrency: int, layer: str = "streamify"
) -> dict[str, Any]:
    import dspy
    from dspy.streaming import StreamListener, StreamResponse

    module = served.module
    predictors = dict(module.named_predictors())
    tokens = 0
    completed = 0
    first_tokens: list[float] = []  # per run: seconds from its start to its first token
    gaps: list[float] = []  # seconds between two tokens of a run (streamify layer)
    indices = iter(range(count))
    one_run = None
    if layer == "runs":
        one_run = _runs_layer(served, package)

    async def streamify_run(question: str) -> None:
        nonlocal tokens, completed
        listeners = [
            StreamListener(
                item.field,
                predict=predictors[item.predictor],
                predict_name=item.predictor,
                allow_reuse=item.allow_reuse,
            )
            for item in served.listen
        ]
        started, last = time.perf_counter(), None
        run = dspy.streamify(module, stream_listeners=listeners, is_async_program=True)
        async with contextlib.aclosing(run(question=question)) as items:
            async for item in items:
                if isinstance(item, StreamResponse) and item.chunk:
                    now = time.perf_counter()
                    if last is None:
                        first_tokens.append(now - started)
                    else:
                        gaps.append(now - last)
                    last = now
                    tokens += 1
                elif isinstance(item, dspy.Prediction):
                    completed += 1

    async def events_run(question: str) -> None:
        nonlocal tokens, completed
        started, first = time.perf_counter(), True
        async with contextlib.aclosing(served.events({"question": question})) as items:
            async for item in items:
                if isinstance(item, dspy.Prediction):
                    completed += 1
                elif getattr(item, "event", None) == "token":
                    if first:
                        first_tokens.append(time.perf_counter() - started)
                        first = False
                    tokens += 1

    async def runs_run(question: str) -> None:
        nonlocal tokens, completed
        assert one_run is not None
        started = time.perf_counter()
        body, first = await one_run(question)
        if first is not None:
            first_tokens.append(first - started)
        tokens += body.count(b"event: token")
        completed += b"event: done" in body

    runner = {"streamify": streamify_run, "events": events_run, "runs": runs_run}[layer]

    async def worker() -> None:
        for index in indices:
            await runner(f"request {index}: what happened?")

    (user0, system0, switches0, writes0), start = cpu_now(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    (user1, system1, switches1, writes1), wall = cpu_now(), time.perf_counter() - start
    return {
        "completed": completed,
        "tokens": tokens,
        "cpu": (user1 - user0) + (system1 - system0),
        "cpu_system": system1 - system0,
        "context_switches": switches1 - switches0,
        "write_calls": writes1 - writes0,
        "wall": wall,
        "first_token_s": sorted(first_tokens),
        "gap_p50_s": percentile(gaps, 50),
        "gap_p99_s": percentile(gaps, 99),
    }


def _runs_layer(served: Any, package: str) -> Any:
    """A coroutine function: one run through the generated ``Runs.stream``, its SSE body."""
    runs_module = importlib.import_module(f"{package}.runtime.runs")
    metrics_module = importlib.import_module(f"{package}.runtime.metrics")
    schemas = importlib.import_module(f"{package}.schemas")
    settings = importlib.import_module(f"{package}.settings").get_settings()
    prefix = served.name.replace("_", "").lower()
    request = next(v for k, v in vars(schemas).items() if k.lower() == f"{prefix}request")
    response = next(v for k, v in vars(schemas).items() if k.lower() == f"{prefix}response")
    if hasattr(settings, "run_log"):  # resumable runs: events go through the run's log
        runs = runs_module.Runs(settings.run_limits(), metrics_module.Metrics(), settings.run_log())
    else:  # a project generated before them
        runs = runs_module.Runs(settings.run_limits(), metrics_module.Metrics())

    async def one(question: str) -> tuple[bytes, float | None]:
        """The SSE body, and when its first token came (``time.perf_counter``)."""
        answer = await runs.stream(served, request(question=question), response.from_prediction)
        chunks: list[bytes] = []
        first = None
        async for chunk in answer.body_iterator:
            chunks.append(chunk if isinstance(chunk, bytes) else chunk.encode())
            if first is None and b"event: token" in chunks[-1]:
                first = time.perf_counter()
        return b"".join(chunks), first

    return one


def capture(served: Any) -> dict[str, Any]:
    """The messages of every LM call of one run, with the question as a placeholder."""
    module = served.module
    lm = module.predictors()[0].lm
    before = len(lm.history)
    prediction = asyncio.run(module.acall(question=PLACEHOLDER))
    calls = [entry["messages"] for entry in lm.history[before:]]
    listened = served.listen[0]
    final = listened.field if listened.field in prediction else "answer"
    return {
        "placeholder": PLACEHOLDER,
        "calls": calls,
        "field": listened.field,
        "final": final,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("run", "capture"))
    parser.add_argument("--project", required=True, help="a generated project folder")
    parser.add_argument("--package", required=True)
    parser.add_argument("--program", required=True)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=1, help="timed batches (after a warm-up)")
    parser.add_argument("--layer", choices=("streamify", "events", "runs"), default="streamify")
    parser.add_argument(
        "--no-warm-up", action="store_true", help="no untimed batch first (bench.instructions)"
    )
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="the event loop (a service on uvloop compares with this on uvloop)",
    )
    args = parser.parse_args(argv)

    served = served_program(args.project, args.package, args.program)
    if args.command == "capture":
        print(json.dumps(capture(served)))
        return

    async def all_batches() -> list[dict[str, Any]]:
        if not args.no_warm_up:
            warm = min(args.count, 10), min(args.concurrency, 10)
            await run_batch(served, args.package, *warm, layer=args.layer)
        return [
            await run_batch(served, args.package, args.count, args.concurrency, args.layer)
            for _ in range(args.repeat)
        ]

    if args.loop == "uvloop":
        import uvloop

        batches = uvloop.run(all_batches())
    else:
        batches = asyncio.run(all_batches())
    print(json.dumps({"batches": batches}))


if __name__ == "__main__":
    main()
