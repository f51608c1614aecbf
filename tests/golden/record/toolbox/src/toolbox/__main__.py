"""``python -m toolbox``: serve with uvicorn as the settings say (host, port, workers).

``python -m toolbox eval`` scores the programs on the spec's examples instead
(see ``runtime/evaluate.py``), and ``optimize`` compiles one with a DSPy optimizer on its
train examples (``runtime/optimize.py``); with no command, or ``serve``, it serves.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from .settings import get_settings

if TYPE_CHECKING:
    from .runtime.evaluate import EvalSpec
    from .runtime.program import ServedProgram


def serve() -> None:
    """Run the service until SIGTERM; open streams get SHUTDOWN_GRACE seconds to end."""
    settings = get_settings()
    uvicorn.run(
        "toolbox.main:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,
        log_config=None,  # the app configures logging (LOG_FORMAT, LOG_LEVEL)
        timeout_graceful_shutdown=int(settings.shutdown_grace) + 5,
    )


def _scored(programs: Sequence[str]) -> "tuple[list[EvalSpec], dict[str, ServedProgram]] | str":
    """The evaluations asked for (all by default) and their programs, or why not."""
    from .evals import EVALS
    from .programs import build_programs

    unknown = sorted(set(programs) - set(EVALS))
    if unknown:
        known = ", ".join(EVALS) or "none: no program of the spec has examples"
        return f"no examples for {', '.join(unknown)} (programs with examples: {known})"
    chosen = [EVALS[name] for name in programs] if programs else list(EVALS.values())
    if not chosen:
        return "no program of the spec has examples: add examples and a metric to one"
    built = build_programs(get_settings())
    served = {spec.program: getattr(built, spec.program) for spec in chosen}
    unready = [name for name, program in served.items() if not program.lm_configured]
    if unready:
        return f"the LM of {', '.join(unready)} is not configured (see the log above)"
    return chosen, served


def evaluate(programs: Sequence[str], threads: int, report: Path | None, progress: bool) -> int:
    """Score the served programs on their examples; the exit code: 0 pass, 1 under, 2 usage."""
    from .runtime.evaluate import run

    scored = _scored(programs)
    if isinstance(scored, str):
        print(scored)
        return 2
    chosen, served = scored
    return run(chosen, served, threads=threads, report=report, out=sys.stdout, progress=progress)


def optimize(args: argparse.Namespace) -> int:
    """Compile one program on its train examples; 0 written, 1 worse, 2 refused (says why)."""
    from .runtime.optimize import OptimizeError, optimize, print_result
    from .runtime.optimize_options import SETTINGS

    scored = _scored([args.program])
    if isinstance(scored, str):
        print(scored)
        return 2
    (spec,), served = scored
    given = {key: getattr(args, key) for key in SETTINGS}
    out = args.out or Path("optimized") / f"{args.program}.json"
    try:
        record = optimize(
            spec,
            served[args.program],
            args.optimizer,
            given,
            package="toolbox",
            out_state=out,
            threads=args.threads,
            progress=args.progress,
            out=sys.stdout,
            only_if_better=args.only_if_better,
        )
    except OptimizeError as exc:
        print(f"error: {exc}")
        return 2
    print_result(record, sys.stdout)
    if record.get("written") is False:
        print(f"nothing written: the score fell, and {out} stays as it was")
        return 1
    print(f"state: {out}\nrecord: {out.with_name(out.stem + '.optimize.json')}")
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """Serve (the default), or evaluate or optimize the programs on their examples."""
    from .runtime.optimize_options import NAMES, SETTINGS

    parser = argparse.ArgumentParser(prog="python -m toolbox")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="Serve the API (the default).")
    scoring = commands.add_parser("eval", help="Score the programs on their examples.")
    scoring.add_argument(
        "--program", action="append", default=[], help="Only this program (repeatable)."
    )
    scoring.add_argument("--threads", type=int, default=4, help="Examples run at once.")
    scoring.add_argument(
        "--report", type=Path, default=Path("eval-report.json"), help="Where to write JSON."
    )
    _progress_option(scoring)
    compiling = commands.add_parser(
        "optimize", help="Compile a program on its train examples with a DSPy optimizer."
    )
    compiling.add_argument("--program", required=True, help="The program to optimize.")
    compiling.add_argument("--optimizer", choices=NAMES, required=True)
    compiling.add_argument(
        "--out", type=Path, help="The state to write (default: optimized/<program>.json)."
    )
    compiling.add_argument("--threads", type=int, default=4, help="Examples run at once.")
    compiling.add_argument(
        "--only-if-better",
        action="store_true",
        help="Write nothing (exit 1) when the score after is under the score before.",
    )
    for name, (kind, about) in SETTINGS.items():
        compiling.add_argument(f"--{name.replace('_', '-')}", type=kind, help=about)
    _progress_option(compiling)
    args = parser.parse_args(argv)
    if args.command == "eval":
        sys.exit(evaluate(args.program, max(1, args.threads), args.report, args.progress))
    if args.command == "optimize":
        args.threads = max(1, args.threads)
        sys.exit(optimize(args))
    serve()


def _progress_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=sys.stderr.isatty(),
        help="Progress bars on stderr (default: when it is a terminal).",
    )


if __name__ == "__main__":
    main()
