"""``python -m cited_answers``: serve with uvicorn as the settings say (host, port, workers).

``python -m cited_answers eval`` scores the programs on the spec's examples instead
(see ``runtime/evaluate.py``); with no command, or ``serve``, it serves as it always has.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from .settings import get_settings


def serve() -> None:
    """Run the service until SIGTERM; open streams get SHUTDOWN_GRACE seconds to end."""
    settings = get_settings()
    uvicorn.run(
        "cited_answers.main:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,
        log_config=None,  # the app configures logging (LOG_FORMAT, LOG_LEVEL)
        timeout_graceful_shutdown=int(settings.shutdown_grace) + 5,
    )


def evaluate(programs: Sequence[str], threads: int, report: Path | None) -> int:
    """Score the served programs on their examples; the exit code: 0 pass, 1 under, 2 usage."""
    from .evals import EVALS
    from .programs import build_programs
    from .runtime.evaluate import run

    unknown = sorted(set(programs) - set(EVALS))
    if unknown:
        known = ", ".join(EVALS) or "none: no program of the spec has examples"
        print(f"no examples for {', '.join(unknown)} (programs with examples: {known})")
        return 2
    chosen = [EVALS[name] for name in programs] if programs else list(EVALS.values())
    if not chosen:
        print("no program of the spec has examples: add examples and a metric to one")
        return 2
    built = build_programs(get_settings())
    served = {spec.program: getattr(built, spec.program) for spec in chosen}
    unready = [name for name, program in served.items() if not program.lm_configured]
    if unready:
        print(f"the LM of {', '.join(unready)} is not configured (see the log above)")
        return 2
    return run(chosen, served, threads=threads, report=report, out=sys.stdout)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve (the default), or evaluate the programs on their examples."""
    parser = argparse.ArgumentParser(prog="python -m cited_answers")
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
    args = parser.parse_args(argv)
    if args.command == "eval":
        sys.exit(evaluate(args.program, max(1, args.threads), args.report))
    serve()


if __name__ == "__main__":
    main()
