"""Spec problems as data, so one run can report all of them with their places."""

from __future__ import annotations

from dataclasses import dataclass

Path = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class Location:
    """Where a YAML node starts, 1-based as editors count; column 0: a whole line.

    A whole line locates a row of a file beside the spec (an examples file),
    shown as ``file:line``.
    """

    line: int
    column: int


@dataclass(frozen=True)
class SpecError:
    """One problem in a spec: where it is and what is wrong."""

    path: Path
    message: str
    location: Location | None = None
    file: str | None = None

    @property
    def dotted(self) -> str:
        """The key path as a person writes it: programs.agent.stream[0].field."""
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
        return text or "(document)"

    @property
    def where(self) -> str:
        """file:line:column, or as much of it as is known."""
        where = self.file or "<spec>"
        if self.location is not None:
            where += f":{self.location.line}"
            if self.location.column:
                where += f":{self.location.column}"
        return where

    def render(self) -> str:
        """A one-line form for logs and plain output; unsafe characters are escaped."""
        from dspy_forge.spec.yamldoc import escaped  # yamldoc defines what text may not hold

        return escaped(f"{self.where}: {self.dotted}: {self.message}")


class SpecInvalid(Exception):
    """Raised with every problem found, when a spec cannot be used."""

    def __init__(self, errors: list[SpecError]) -> None:
        self.errors = sorted(
            errors, key=lambda e: (e.location or Location(0, 0), e.dotted, e.message)
        )
        super().__init__("\n".join(error.render() for error in self.errors))
