"""The commands that score and improve a spec's programs: ``eval`` and ``optimize``.

Both run in a generated project (``python -m <package> eval|optimize``), so a
score is the score of the code that is served; see :mod:`dspy_forge.dev.evaluation`
and :mod:`dspy_forge.dev.optimization`.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from dspy_forge.console import SpecArg, err, load_or_exit, out, shown
from dspy_forge.render.template import RenderError


class Optimizer(enum.StrEnum):
    """The optimizers ``optimize`` offers (the project's runtime/optimize.py runs them)."""

    bootstrap_few_shot = "bootstrap-few-shot"
    mipro_v2 = "mipro-v2"
    gepa = "gepa"


class Preset(enum.StrEnum):
    """The budget presets of MIPROv2 and GEPA."""

    light = "light"
    medium = "medium"
    heavy = "heavy"


def eval_command(
    spec: SpecArg,
    program: Annotated[
        list[str] | None,
        typer.Option("--program", "-p", help="Only this program (repeatable)."),
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="Examples run at once.")] = 4,
    project: Annotated[
        Path | None,
        typer.Option(
            help="A project generated from this spec to evaluate in; "
            "by default one is generated into a temporary folder.",
            file_okay=False,
        ),
    ] = None,
    report: Annotated[
        Path, typer.Option(help="Where to write the JSON report.", dir_okay=False)
    ] = Path("eval-report.json"),
) -> None:
    """Score the spec's programs on their examples; exit 1 under a threshold.

    The spec is validated first, examples included: a problem stops it before
    anything runs. The LM is the one the environment names (LM_MODEL, LM_API_BASE,
    LM_API_KEY, or the spec's key variable); see docs/evaluate.md for the fake LM.
    """
    from dspy_forge.dev import evaluation

    loaded = load_or_exit(spec)
    try:
        code = evaluation.run_eval(
            loaded, programs=program or [], threads=threads, project=project, report=report
        )
    except (evaluation.EvalError, RenderError, OSError) as exc:
        err.print(f"[bold red]error:[/] {shown(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def optimize_command(
    spec: SpecArg,
    program: Annotated[str, typer.Option("--program", "-p", help="The program to optimize.")],
    optimizer: Annotated[Optimizer, typer.Option(help="The DSPy optimizer.", case_sensitive=False)],
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="The state to write, in the spec's folder or below it "
            "(default: optimized/<program>.json beside the spec).",
            dir_okay=False,
        ),
    ] = None,
    project: Annotated[
        Path | None,
        typer.Option(help="A project generated from this spec to run in.", file_okay=False),
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="Examples run at once.")] = 4,
    auto: Annotated[
        Preset | None, typer.Option(help="MIPROv2's or GEPA's budget preset (default: light).")
    ] = None,
    num_trials: Annotated[int | None, typer.Option(min=1, help="MIPROv2: trials.")] = None,
    num_candidates: Annotated[
        int | None, typer.Option(min=1, help="MIPROv2: instruction candidates.")
    ] = None,
    max_metric_calls: Annotated[
        int | None, typer.Option(min=1, help="GEPA: metric calls in all.")
    ] = None,
    max_bootstrapped_demos: Annotated[
        int | None, typer.Option(min=0, help="Demos bootstrapped from traces that pass.")
    ] = None,
    max_labeled_demos: Annotated[
        int | None, typer.Option(min=0, help="Demos taken from the train examples as they are.")
    ] = None,
    max_rounds: Annotated[
        int | None, typer.Option(min=1, help="BootstrapFewShot: rounds of bootstrapping.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="MIPROv2's or GEPA's random seed.")] = None,
) -> None:
    """Compile a program on its train examples, score it before and after, serve the result.

    The state (program.save() JSON) and a record of the run (optimizer, settings,
    scores, model) go into the spec's folder; then the program's state: is set to
    it, so the next generate serves it. The LM is the one the environment names, as
    for eval (docs/optimize.md).
    """
    from dspy_forge.dev import evaluation, optimization

    loaded = load_or_exit(spec)
    settings = {
        "auto": auto.value if auto else None,
        "num_trials": num_trials,
        "num_candidates": num_candidates,
        "max_metric_calls": max_metric_calls,
        "max_bootstrapped_demos": max_bootstrapped_demos,
        "max_labeled_demos": max_labeled_demos,
        "max_rounds": max_rounds,
        "seed": seed,
    }
    try:
        outcome = optimization.run_optimize(
            loaded,
            program,
            optimizer.value,
            settings,
            out=out_file,
            project=project,
            threads=threads,
        )
    except (evaluation.EvalError, RenderError, OSError) as exc:
        err.print(f"[bold red]error:[/] {shown(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    if isinstance(outcome, int):
        raise typer.Exit(outcome)
    out.print(f"\nstate written: {shown(str(outcome.state))}", highlight=False)
    if outcome.pointed:
        out.print(f"{shown(outcome.note)}; next: dspy-forge generate {shown(str(spec))}")
        return
    err.print(f"[bold yellow]not served yet:[/] {shown(outcome.note)}", highlight=False)
    raise typer.Exit(1)
