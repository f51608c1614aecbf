"""The terminal side of every command: its consoles, the spec argument, errors shown.

Spec text reaches a terminal only through :func:`shown`, so that a hostile
string is never read as Rich markup nor moves the cursor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from dspy_forge.spec.errors import SpecInvalid
from dspy_forge.spec.loader import LoadedSpec, load_spec
from dspy_forge.spec.yamldoc import escaped

# soft_wrap: a line longer than the terminal is folded by the terminal, not broken by Rich,
# so that a path or a command printed to be copied (a recovery, a next step) stays whole
# when it is selected on screen or read from a log.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

SpecArg = Annotated[
    Path, typer.Argument(help="The spec file (YAML).", dir_okay=False, show_default=False)
]


def load_or_exit(path: Path) -> LoadedSpec:
    """The spec at ``path``, or its problems on stderr and exit code 1."""
    try:
        return load_spec(path)
    except SpecInvalid as exc:
        report(exc)
        raise typer.Exit(1) from None


def shown(text: str) -> str:
    """Text for the terminal: never read as markup, no control, bidi or break characters raw."""
    return escape(escaped(text))


def report(exc: SpecInvalid) -> None:
    """One screen of located errors, one a line; spec text is escaped, never read as markup."""
    count = len(exc.errors)
    err.print(f"[bold red]{count} problem{'s' if count > 1 else ''} in the spec[/]")
    for error in exc.errors[:30]:
        where, dotted, message = (
            shown(text) for text in (error.where, error.dotted, error.message)
        )
        err.print(f"  [cyan]{where}[/] [bold]{dotted}[/]: {message}", highlight=False)
    if count > 30:
        err.print(f"  ... and {count - 30} more")
