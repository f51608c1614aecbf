"""The ``dspy-forge`` command line: init, validate, generate, eval, optimize, schema, fake-lm, demo.

Only this module chooses exit codes and prints; user mistakes are shown as one
screen of located errors, never as a traceback.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

import dspy_forge
from dspy_forge import __version__, program_commands
from dspy_forge.console import SpecArg, err, out, shown
from dspy_forge.console import load_or_exit as _load
from dspy_forge.render.template import RenderError
from dspy_forge.render.update import Plan, preview
from dspy_forge.spec.migrations import SpecMigrated
from dspy_forge.spec.schema import spec_json_schema
from dspy_forge.spec.starter import STARTER_SPEC

app = typer.Typer(
    name="dspy-forge",
    help="Generate streaming FastAPI services from a YAML spec of DSPy programs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def validate(spec: SpecArg) -> None:
    """Check a spec and list its programs; exit 1 with every problem found."""
    loaded = _load(spec)
    table = Table(title=escape(f"{loaded.model.title} ({loaded.model.package})"))
    for column in ("program", "module", "streams", "endpoints"):
        table.add_column(column)
    for program in loaded.model.programs:
        streams = ", ".join(f"{item.predictor}.{item.field}" for item in program.listeners)
        table.add_row(
            program.name,
            program.module,
            streams or "-",
            f"/v1/{program.name}, /v1/{program.name}/stream, /v1/{program.name}/batch",
        )
    out.print(table)
    out.print("[green]valid[/]")


@app.command(name="generate")
def generate_command(
    spec: SpecArg,
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder to create the project in, or a project generated before to update.",
            file_okay=False,
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change, file by file; write nothing.")
    ] = False,
    rebase: Annotated[
        bool,
        typer.Option(
            "--rebase-on-current-template",
            help="When the template version the project records cannot be found, merge your "
            "edits onto the current template rendered with the project's recorded answers.",
        ),
    ] = False,
) -> None:
    """Generate the service's project from a spec, or update one generated before, no prompts.

    On a folder holding a generated project (a clean git repository), the spec's
    and the template's changes are merged with yours by Copier; see docs/updating.md.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SpecMigrated)
        loaded = _load(spec)
    for warning in caught:
        if issubclass(warning.category, SpecMigrated):
            err.print(f"[yellow]notice:[/] {escape(str(warning.message))}", highlight=False)
        else:
            warnings.showwarning(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    try:
        if dry_run:
            _show_plan(preview(loaded, out_dir, rebase=rebase), dry_run=True)
            return
        result = dspy_forge.generate(loaded, out_dir, rebase=rebase)
        if isinstance(result, Plan):
            _show_plan(result, dry_run=False)
            return
    except (RenderError, OSError) as exc:
        lines = "\n".join(shown(line) for line in str(exc).split("\n"))  # ruff's, line by line
        err.print(f"[bold red]error:[/] {lines}", highlight=False)
        raise typer.Exit(1) from None
    package = loaded.model.package
    out.print(f"[green]generated[/] {escape(str(out_dir))}")
    out.print(escape(f"  cd {out_dir} && pip install -e '.[test]' && uvicorn {package}.main:app"))


def _show_plan(plan: Plan, *, dry_run: bool) -> None:
    """Print what generating did or would do: the files, notices, conflicts, and the diff."""
    where = escape(str(plan.project))
    if not plan.changes:
        version = escape(str(plan.new_version))
        out.print(f"[green]{where} is up to date[/] with the spec and template {version}")
        return
    if plan.fresh:
        head = f"would generate {where}"
    else:
        versions = escape(f"template {plan.old_version} -> {plan.new_version}")
        head = f"{'would update' if dry_run else 'updated'} {where} ({versions})"
    count = len(plan.changes)
    out.print(f"[green]{head}[/]: {count} file{'s' if count > 1 else ''}", highlight=False)
    for change in plan.changes:
        out.print(f"  {change.status:<9} {escape(change.path)}", highlight=False)
    for notice in plan.notices:
        err.print(f"[yellow]notice:[/] {escape(notice)}", highlight=False)
    if plan.conflicts:
        err.print(
            "[bold yellow]conflicts:[/] resolve the <<<<<<< before updating / >>>>>>> after "
            "updating markers in:",
            highlight=False,
        )
        for name in plan.conflicts:
            err.print(f"  {escape(name)}", highlight=False)
    if dry_run:
        typer.echo(plan.diff, nl=False)
        out.print("[yellow]dry run:[/] nothing was written")
    else:
        out.print(f"  review with: cd {where} && git status && git diff; then commit")


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the starter spec.")] = Path(
        "service.yaml"
    ),
) -> None:
    """Write a commented starter spec to edit."""
    if path.exists():
        err.print(
            f"[bold red]error:[/] {shown(str(path))} exists; choose another path", highlight=False
        )
        raise typer.Exit(1)
    path.write_text(STARTER_SPEC, encoding="utf-8")
    out.print(f"[green]wrote[/] {path}; next: dspy-forge validate {path}")


@app.command()
def schema(
    output: Annotated[
        Path | None,
        typer.Option("--output", "--out", "-o", help="Write to this file, not stdout."),
    ] = None,
) -> None:
    """Print the JSON Schema of the spec, for editor completion."""
    text = json.dumps(spec_json_schema(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@app.command(name="fake-lm")
def fake_lm(
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8001,
    scenario: Annotated[
        str | None, typer.Option(help="Default scenario, e.g. 'delay-30ms'.")
    ] = None,
) -> None:
    """Serve the built-in fake OpenAI-compatible LM (no API key, no network)."""
    from dspy_forge.dev.fakelm.launcher import serve

    serve(host=host, port=port, scenario=scenario)


@app.command()
def demo(
    spec: Annotated[Path, typer.Option(help="The spec to serve.", dir_okay=False)] = Path(
        "specs/research-agent.yaml"
    ),
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Where to generate the project: a new or empty folder, or an earlier demo's.",
            file_okay=False,
        ),
    ] = Path("demo-service"),
    port: Annotated[int, typer.Option(help="Port of the service, on 127.0.0.1.")] = 8000,
    scenario: Annotated[
        str, typer.Option(help="Fake LM scenario; the default paces tokens like a real LM.")
    ] = "delay-40ms",
) -> None:
    """Generate SPEC into --out and serve it on the built-in fake LM until stopped; no key needed.

    --out is a new or empty folder, or one an earlier demo made and nothing else
    touched, which is regenerated; any other folder is refused and left as it is.
    The servers stop with the command, on Ctrl-C, SIGTERM or SIGHUP.
    """
    from dspy_forge.dev import demo as demos

    loaded = _load(spec)
    try:
        with demos.stopping_on_signals():
            replace = demos.check_folder(out_dir)  # refused before anything is written
            with demos.listen(port) as listener:  # and the port is ours before either
                demos.write_demo(loaded, out_dir, replace=replace)
                out.print(f"[green]generated[/] {escape(str(out_dir))}", highlight=False)
                code = demos.run_demo(
                    loaded.model, out_dir, listener=listener, scenario=scenario, console=out
                )
    except demos.Stopped:
        code = 0
    except (demos.DemoError, RenderError, OSError) as exc:
        lines = "\n".join(shown(line) for line in str(exc).split("\n"))
        err.print(f"[bold red]error:[/] {lines}", highlight=False)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


app.command(name="eval")(program_commands.eval_command)
app.command(name="optimize")(program_commands.optimize_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Generate streaming FastAPI services from a YAML spec of DSPy programs."""
