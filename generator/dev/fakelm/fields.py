"""Output field types from a DSPy prompt: type names, constraints and notes as JSON Schemas."""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

FieldKind = Literal["str", "int", "float", "bool", "choice", "json"]


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """One output field: its name, DSPy's name for its type, and what a valid value is.

    ``schema`` is the field's JSON schema when DSPy gave one (structured types), or a scalar
    schema carrying the field's constraints (``minimum``, ``maxLength``...) otherwise.
    """

    name: str
    type_name: str
    kind: FieldKind
    choices: tuple[Any, ...] = ()
    schema: Mapping[str, Any] | None = None


# Pydantic constraints as DSPy prints them (dspy.signatures.field.PYDANTIC_CONSTRAINT_MAP),
# mapped to the JSON-schema keywords the responder honours.
CONSTRAINTS = {
    "greater than or equal to: ": "minimum",
    "greater than: ": "exclusiveMinimum",
    "less than or equal to: ": "maximum",
    "less than: ": "exclusiveMaximum",
    "minimum length: ": "minLength",
    "maximum length: ": "maxLength",
    "a multiple of the given number: ": "multipleOf",
}


SCALARS: dict[str, tuple[FieldKind, str]] = {
    "str": ("str", "string"),
    "int": ("int", "integer"),
    "float": ("float", "number"),
    "bool": ("bool", "boolean"),
}


def output_spec(name: str, type_name: str, constraints: str, note: str | None) -> OutputSpec:
    """Decide how to produce a valid value for one output field."""
    limits = parse_constraints(constraints)
    if note and note.startswith("must adhere to the JSON schema: "):
        try:
            schema = json.loads(note[len("must adhere to the JSON schema: ") :])
        except ValueError:
            schema = {}
        if isinstance(schema, dict):
            schema = with_constraints(schema, limits)
            return OutputSpec(name, type_name, "json", schema=schema)
    if type_name.startswith("Literal[") and type_name.endswith("]"):
        choices = literal_choices(type_name[len("Literal[") : -1])
        if choices:
            return OutputSpec(name, type_name, "choice", choices=choices)
    if note and " one of: " in note:
        return OutputSpec(
            name, type_name, "choice", choices=tuple(note.split(" one of: ", 1)[1].split("; "))
        )
    # Anything else without a schema (str, Reasoning, custom text types) is answered as prose.
    kind, json_type = SCALARS.get(type_name, SCALARS["str"])
    if note == "must be True or False":
        kind, json_type = SCALARS["bool"]
    return OutputSpec(name, type_name, kind, schema={"type": json_type, **limits})


def parse_constraints(text: str) -> dict[str, Any]:
    """Pydantic constraints printed by DSPy (``greater than: 0, ...``) as JSON-schema keywords."""
    limits: dict[str, Any] = {}
    for part in text.split(", ") if text else ():
        for prefix, keyword in CONSTRAINTS.items():
            if part.startswith(prefix):
                try:
                    value = ast.literal_eval(part[len(prefix) :].strip())
                except (ValueError, SyntaxError):
                    continue
                if isinstance(value, int | float) and not isinstance(value, bool):
                    limits[keyword] = value
    return limits


def with_constraints(schema: dict[str, Any], limits: dict[str, Any]) -> dict[str, Any]:
    """Fold field-level constraints into a structured schema (lengths mean items for arrays)."""
    if not limits:
        return schema
    if schema.get("type") == "array":
        renamed = {"minLength": "minItems", "maxLength": "maxItems"}
        limits = {renamed.get(key, key): value for key, value in limits.items()}
    return {**schema, **limits}


def literal_choices(inner: str) -> tuple[Any, ...]:
    """The members of ``Literal[...]`` as DSPy prints it (``'a', "it's", 3, True``)."""
    try:
        value = ast.literal_eval(f"({inner},)")
    except (ValueError, SyntaxError):
        return ()
    return tuple(value) if isinstance(value, tuple) else ()
