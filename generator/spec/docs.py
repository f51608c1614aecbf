"""docs/spec.md and docs/spec.schema.json, generated from the spec's pydantic model.

Both are committed, for readers and for editors; tests fail when either differs
from what this module writes, so the reference cannot drift from the code.
Regenerate them with ``python -m dspy_forge.spec.docs`` (from a source checkout).
"""

from __future__ import annotations

import json
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from dspy_forge.service.anatomy import known, predictors
from dspy_forge.spec.base import PATTERNS
from dspy_forge.spec.contract import PLACEHOLDERS, ModuleName, Spec
from dspy_forge.spec.schema import spec_json_schema
from dspy_forge.spec.types import SUPPORTED

DOCS = Path(__file__).resolve().parents[2] / "docs"
# What the model cannot say by itself, per section.
NOTES: dict[str, str] = {
    "FieldSpec": "A field with no description may be written as `name: type`, "
    "e.g. `question: str`.",
    "ProgramSpec": "A program `p` is served at `POST /v1/p`, `POST /v1/p/stream` and "
    "`POST /v1/p/batch`.",
    "StatusSpec": "A template names only its hook's placeholders (see below), with no "
    "format spec or conversion; write literal braces as `{{` and `}}`.",
}


@dataclass
class _Section:
    """One model of the spec and the key paths where it appears."""

    model: type[BaseModel]
    paths: list[str] = field(default_factory=list)


def _sections() -> list[_Section]:
    """Every model reachable from :class:`Spec`, in the order a reader meets them."""
    found: dict[type[BaseModel], _Section] = {}

    def visit(model: type[BaseModel], path: str) -> None:
        section = found.setdefault(model, _Section(model))
        section.paths.append(path)
        if len(section.paths) > 1:
            return
        for name, info in model.model_fields.items():
            for inner, suffix in _models_in(info.annotation):
                visit(inner, f"{path}.{name}{suffix}".lstrip("."))

    visit(Spec, "")
    return list(found.values())


def _models_in(annotation: Any, suffix: str = "") -> list[tuple[type[BaseModel], str]]:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, suffix)]
    if origin is dict:
        return _models_in(args[1], suffix + ".<name>")
    if origin is list:
        return _models_in(args[0], suffix + "[]")
    return [found for arg in args for found in _models_in(arg, suffix)]


def _anchor(model: type[BaseModel]) -> str:
    return model.__name__.lower()


def _type(annotation: Any) -> str:
    """How a value of ``annotation`` is written, in words, with its constraints."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _constrained(_type(args[0]), args[1:])
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{json.dumps(a)}`" for a in args)
    if origin is list:
        return f"list of {_type(args[0])}"
    if origin is dict:
        return f"mapping of {_type(args[0])} to {_type(args[1])}"
    if args and type(None) in args:
        others = [a for a in args if a is not type(None)]
        return " or ".join(_type(a) for a in others) + " or null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{_anchor(annotation)})"
    names = {str: "text", int: "integer", float: "number", bool: "true/false"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _constrained(base: str, metadata: tuple[Any, ...]) -> str:
    notes: list[str] = []
    for item in metadata:
        if isinstance(item, FieldInfo):
            return _constrained(base, tuple(item.metadata))
        pattern = getattr(item, "pattern", None)
        if pattern:
            notes.append(PATTERNS.get(pattern, f"matching `{pattern}`"))
        if getattr(item, "min_length", None) == 1:
            notes.append("not empty")
        elif getattr(item, "min_length", None):
            notes.append(f"at least {item.min_length} characters")
        if getattr(item, "max_length", None):
            notes.append(f"at most {item.max_length:,} characters")
        for kind, word in (
            (annotated_types.Gt, ">"),
            (annotated_types.Ge, "≥"),
            (annotated_types.Lt, "<"),
            (annotated_types.Le, "≤"),
        ):
            if isinstance(item, kind):
                notes.append(f"{word} {getattr(item, kind.__name__.lower()):,}")
    return f"{base} ({', '.join(notes)})" if notes else base


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "**required**"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_defaults=True)
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _description(info: FieldInfo) -> str:
    if info.description:
        return info.description
    for inner, _ in _models_in(info.annotation):
        return (inner.__doc__ or "").strip()
    return ""


def _section(section: _Section) -> list[str]:
    model = section.model
    title = "Top level" if model is Spec else model.__name__
    where = ", ".join(f"`{path}`" for path in section.paths if path)
    lines = [f'<a id="{_anchor(model)}"></a>', "", f"## {title}", ""]
    lines.append((model.__doc__ or "").strip() + (f" At {where}." if where else ""))
    if model.__name__ in NOTES:
        lines += ["", NOTES[model.__name__]]
    lines += ["", "| key | value | default | meaning |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        value = _constrained(_type(info.annotation), tuple(info.metadata))
        cells = (f"`{name}`", value, _default(info), _description(info))
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return [*lines, ""]


def _appendix() -> list[str]:
    lines = ["## Field types", "", "A field's or argument's `type`, and a tool's `returns`:"]
    lines += ["", *(f"- `{kind}`" for kind in SUPPORTED)]
    lines += ["", "`Image` and `History` are DSPy's types, for inputs only.", ""]
    lines += ["## Status placeholders", "", "| hook | placeholders |", "|---|---|"]
    for hook, names in PLACEHOLDERS.items():
        lines.append(f"| `{hook}` | " + " ".join(f"`{{{n}}}`" for n in sorted(names)) + " |")
    lines += ["", "## Predictors a listener can name", ""]
    lines += ["`<inputs>` and `<outputs>` stand for the signature's fields.", ""]
    lines += ["| module | predictor | its fields |", "|---|---|---|"]
    for module in typing.get_args(ModuleName):
        for name, (ins, outs) in predictors(module, ("<inputs>",), ("<outputs>",)).items():
            fields = (*ins, *outs)
            lines.append(f"| {module} | `{name}` | " + ", ".join(f"`{f}`" for f in fields) + " |")
        if not known(module):
            lines.append(
                f"| {module} | yours, as `named_predictors()` names them (e.g. `answer.predict`) "
                "| checked when the service starts; a listener must name its predictor |"
            )
    lines += [
        "",
        "## Names",
        "",
        "Names of signatures, tools, programs, fields and arguments become Python names and "
        "URL segments: ASCII letters, digits and `_`, not starting with a digit or `_`, and "
        "not a Python keyword. A name is refused when something it generates (a class, a "
        "function, a constant, an endpoint) would clash with another name's or with the "
        "generated code's own; the error says which.",
        "",
    ]
    return lines


def render_spec_docs() -> str:
    """The text of docs/spec.md."""
    lines = [
        "# Spec reference",
        "",
        "<!-- Generated from generator/spec.py by `python -m dspy_forge.spec.docs`; "
        "do not edit. -->",
        "",
        "A spec is one YAML document describing one service. Editors with "
        "yaml-language-server check and complete it with [the JSON Schema](spec.schema.json) "
        "(also printed by `dspy-forge schema`) when its first line is "
        "`# yaml-language-server: $schema=<path to>/spec.schema.json`.",
        "",
    ]
    for section in _sections():
        lines += _section(section)
    lines += _appendix()
    return "\n".join(lines).rstrip("\n") + "\n"


def render_schema() -> str:
    """The text of docs/spec.schema.json, as ``dspy-forge schema`` prints it."""
    return json.dumps(spec_json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    """Write both files into the given folder (the checkout's docs/ by default)."""
    docs = Path(argv[0]) if argv else DOCS
    if not docs.is_dir():
        print(f"{docs} is not a folder; run from a source checkout or name one")
        return 2
    (docs / "spec.md").write_text(render_spec_docs(), encoding="utf-8")
    (docs / "spec.schema.json").write_text(render_schema(), encoding="utf-8")
    print(f"wrote {docs / 'spec.md'} and {docs / 'spec.schema.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
