"""Check a program's eval examples against its signature, row by row, with places.

Examples are written inline in the spec or kept in a JSONL or CSV file beside it
(the same path rules as a saved ``state``: see :mod:`.state`). Every row is
checked here, at generation, so that ``eval`` never meets a row its program
cannot run: an unknown or missing field, or a value of the wrong type, is an
error located at the row (``examples.jsonl:3`` for a file, the spec's line and
column for inline rows), and all of them are reported in one run.

The valid rows are normalised to JSONL, the one format the generated project
reads (``src/<package>/examples/<program>.jsonl``).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from dspy_forge.service.model import SignatureModel
from dspy_forge.service.state import state_file
from dspy_forge.spec.errors import Location, SpecError
from dspy_forge.spec.errors import Path as KeyPath

MAX_EXAMPLES_BYTES = 20_000_000
MAX_ROWS = 100_000


@dataclass(frozen=True)
class Unreadable:
    """A line of an examples file that is not an example at all, and why."""

    reason: str


@functools.lru_cache(maxsize=256)
def _adapter(annotation: str) -> TypeAdapter[Any]:
    """A validator for a field's type (not Image or History, which only DSPy checks)."""
    namespace = {"Literal": Literal, "list": list, "dict": dict, "str": str, "int": int}
    namespace |= {"float": float, "bool": bool, "None": None}
    # The annotation is our own rendering of a parsed type (spec.types), never spec text.
    return TypeAdapter(eval(annotation, {"__builtins__": {}}, namespace))


def _check_row(
    row: Any, signature: SignatureModel, required: tuple[str, ...], from_csv: bool
) -> tuple[list[str], dict[str, Any]]:
    """What is wrong with one example, as messages naming its fields; the row as JSON values.

    A CSV cell is text: a field of another type reads it as JSON (``3``, ``true``,
    ``["a"]``), and the row keeps the value it means.
    """
    if not isinstance(row, dict):
        return [f"an example is an object of fields, not a {type(row).__name__}"], {}
    normalised = dict(row)
    fields = {f.name: f for f in (*signature.inputs, *signature.outputs)}
    problems = []
    for name in row:
        if name not in fields:
            known = ", ".join(fields)
            problems.append(f"field {name!r} is not in the signature (its fields: {known})")
    for field in signature.inputs:
        if field.name not in row and not field.type.optional:
            problems.append(f"field {field.name!r} is missing (an input of the signature)")
    for name in required:
        if name not in row:
            problems.append(f"field {name!r} is missing (the metric compares it)")
    for name, value in row.items():
        field = fields.get(name)
        if field is None or field.type.uses_dspy_type:
            continue
        adapter = _adapter(field.type.annotation)
        if from_csv and not field.type.is_str:
            with contextlib.suppress(ValueError):  # else validated as the text it is
                value = json.loads(value)
        try:
            valid = adapter.validate_python(value, strict=not from_csv)
            normalised[name] = adapter.dump_python(valid, mode="json")
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            problems.append(
                f"field {name!r}: {first['msg']}, not {json.dumps(value, default=str)[:80]} "
                f"(its type is {field.type.annotation})"
            )
    return problems, normalised


def _read_rows(source: Path, shown: Path) -> list[tuple[int, Any]] | str:
    """The rows of a JSONL or CSV file with their line numbers, or why it cannot be read."""
    if source.suffix.lower() not in {".jsonl", ".csv"}:
        return f"{shown}: examples are a .jsonl or .csv file"
    try:
        if source.stat().st_size > MAX_EXAMPLES_BYTES:
            return f"{shown} is larger than {MAX_EXAMPLES_BYTES} bytes"
        text = source.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        return f"{shown} is not UTF-8 text ({exc.reason} at byte {exc.start})"
    except OSError as exc:
        return f"cannot read {shown} ({exc.strerror or exc})"
    rows: list[tuple[int, Any]] = []
    if source.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for record in reader:
            line = reader.line_num  # the last line of the record (a quoted cell may span lines)
            extra = record.pop(None, None)  # type: ignore[call-overload]
            if extra:
                rows.append((line, Unreadable(f"{len(extra)} more cells than the header has")))
                continue
            rows.append((line, {k: v for k, v in record.items() if v is not None and v != ""}))
        return rows
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            rows.append((line, json.loads(raw)))
        except RecursionError:
            rows.append((line, Unreadable("nested too deeply to be an example")))
        except ValueError as exc:
            rows.append((line, Unreadable(f"not JSON ({exc})")))
    return rows


def check_examples(
    examples: list[dict[str, Any]] | str,
    signature: SignatureModel,
    required: tuple[str, ...],
    base_dir: Path | None,
    path: KeyPath,
) -> tuple[list[dict[str, Any]], list[SpecError]]:
    """The valid rows of a program's examples, or every problem found in them.

    ``required`` names the output fields every row must hold (the metric's).
    Errors in a file carry its name and the row's line; inline ones the row's key
    path, which the loader locates in the spec.
    """
    if isinstance(examples, list):
        numbered: list[tuple[int, Any]] = list(enumerate(examples))
        file = None
    else:
        found = state_file(examples, base_dir)
        if isinstance(found, str):
            return [], [SpecError(path, found.replace("a saved state", "an examples file"))]
        source, shown = found
        read = _read_rows(source, shown)
        if isinstance(read, str):
            return [], [SpecError(path, read)]
        numbered, file = read, str(shown)
    from_csv = file is not None and file.lower().endswith(".csv")
    errors = []
    rows = []
    for row, value in numbered[:MAX_ROWS]:
        if isinstance(value, Unreadable):
            problems, normalised = [value.reason], {}
        else:
            problems, normalised = _check_row(value, signature, required, from_csv)
        for message in problems:
            if file is None:
                errors.append(SpecError((*path, row), message))
            else:
                errors.append(SpecError(path, message, location=Location(row, 0), file=file))
        if not problems:
            rows.append(normalised)
    if len(numbered) > MAX_ROWS:
        errors.append(SpecError(path, f"more than {MAX_ROWS} examples"))
    if not numbered:
        errors.append(SpecError(path, "no examples: give at least one"))
    return rows, errors
