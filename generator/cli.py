"""The ``dspy-forge`` command line: init, validate, generate, schema, fake-lm.

Only this module chooses exit codes and prints; user mistakes are shown as one
screen of located errors, never as a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dspy_forge import __version__
from dspy_forge.errors import SpecInvalid
from dspy_forge.loader import LoadedSpec, load_spec
from dspy_forge.render import RenderError, generate
from dspy_forge.schema import spec_json_schema
from dspy_forge.starter import STARTER_SPEC

app = typer.Typer(
    name="dspy-forge",
    help="Generate streaming FastAPI services from a YAML spec of DSPy programs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

SpecArg = Annotated[
    Path, typer.Argument(help="The spec file (YAML).", dir_okay=False, show_default=False)
]


def _load(path: Path) -> LoadedSpec:
    try:
        return load_spec(path)
    except SpecInvalid as exc:
        _report(exc)
        raise typer.Exit(1) from None


def _report(exc: SpecInvalid) -> None:
    count = len(exc.errors)
    err.print(f"[bold red]{count} problem{'s' if count > 1 else ''} in the spec[/]")
    for error in exc.errors[:30]:
        where = error.file or "<spec>"
        if error.location is not None:
            where += f":{error.location.line}:{error.location.column}"
        err.print(f"  [cyan]{where}[/] [bold]{error.dotted}[/]: {error.message}", highlight=False)
    if count > 30:
        err.print(f"  ... and {count - 30} more")


@app.command()
def validate(spec: SpecArg) -> None:
    """Check a spec and list its programs; exit 1 with every problem found."""
    loaded = _load(spec)
    table = Table(title=f"{loaded.model.title} ({loaded.model.package})")
    for column in ("program", "module", "streams", "endpoints"):
        table.add_column(column)
    for program in loaded.model.programs:
        streams = ", ".join(f"{item.predictor}.{item.field}" for item in program.listeners)
        table.add_row(
            program.name,
            program.module,
            streams or "-",
            f"/v1/{program.name}, /v1/{program.name}/stream",
        )
    out.print(table)
    out.print("[green]valid[/]")


@app.command(name="generate")
def generate_command(
    spec: SpecArg,
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to create the project in.", file_okay=False)
    ],
) -> None:
    """Generate the service's project from a spec, without prompts."""
    loaded = _load(spec)
    try:
        generate(loaded, out_dir)
    except RenderError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    package = loaded.model.package
    out.print(f"[green]generated[/] {out_dir}")
    out.print(f"  cd {out_dir} && pip install -e '.[test]' && uvicorn {package}.main:app")


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the starter spec.")] = Path(
        "service.yaml"
    ),
) -> None:
    """Write a commented starter spec to edit."""
    if path.exists():
        err.print(f"[bold red]error:[/] {path} exists; choose another path", highlight=False)
        raise typer.Exit(1)
    path.write_text(STARTER_SPEC, encoding="utf-8")
    out.print(f"[green]wrote[/] {path}; next: dspy-forge validate {path}")


@app.command()
def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
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
    from dspy_forge.fakelm.launcher import serve

    serve(host=host, port=port, scenario=scenario)


@app.command()
def demo(
    spec: Annotated[Path, typer.Option(help="The spec to serve.", dir_okay=False)] = Path(
        "specs/research-agent.yaml"
    ),
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Where to generate the project.", file_okay=False)
    ] = Path("demo-service"),
    port: Annotated[int, typer.Option(help="Port of the service.")] = 8000,
    scenario: Annotated[
        str, typer.Option(help="Fake LM scenario; the default paces tokens like a real LM.")
    ] = "delay-40ms",
) -> None:
    """Generate SPEC into --out (afresh) and serve it on the built-in fake LM; no key needed."""
    import shutil

    from dspy_forge.demo import run_demo

    loaded = _load(spec)
    if out_dir.exists():
        if not (out_dir / ".copier-answers.yml").is_file():
            err.print(f"[bold red]error:[/] {out_dir} exists and is not a generated project")
            raise typer.Exit(1)
        shutil.rmtree(out_dir)
    generate(loaded, out_dir)
    out.print(f"[green]generated[/] {out_dir}")
    run_demo(loaded.model, out_dir, port=port, scenario=scenario, console=out)


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
