"""Pydantic's shape errors as located spec errors, in a person's words."""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from dspy_forge.spec.base import PATTERNS
from dspy_forge.spec.contract import Spec
from dspy_forge.spec.errors import Path as KeyPath
from dspy_forge.spec.errors import SpecError
from dspy_forge.spec.hints import closest, suggest
from dspy_forge.spec.yamldoc import shown


def data_path(loc: tuple[Any, ...], data: Any) -> KeyPath:
    """Keep the parts of a pydantic error location that name keys in the data."""
    path: list[str | int] = []
    current = data
    for part in loc:
        if (isinstance(current, dict) and part in current) or (
            isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        ):
            current = current[part]
        else:
            continue  # a union branch or validator name, not a key
        path.append(part)
    return tuple(path)


def model_at(path: KeyPath) -> type[BaseModel] | None:
    """The spec model that validates the mapping at ``path``, for did-you-mean hints."""
    model: Any = Spec
    for part in path:
        found = model.model_fields.get(part) if isinstance(model, type) else None
        if found is not None:
            annotation = found.annotation
        elif isinstance(model, tuple) and model[0] == "map":
            annotation = model[1]
        else:
            return None
        model = unwrap(annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is dict:
        return ("map", args[1])
    if origin is list:
        return ("map", args[0])
    if args and origin is not typing.Literal:
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        return models[0] if models else annotation
    return annotation


@dataclass(frozen=True)
class Broken:
    """A value that failed its shape check; an unknown key can be dropped on its own."""

    path: KeyPath
    unknown_key: bool = False


def shape_error(item: Any, data: Any) -> tuple[SpecError, Broken]:
    """A pydantic error as a spec error, and the value it makes unusable."""
    path = data_path(item["loc"], data)
    kind = item["type"]
    found = item.get("input")
    if kind == "missing":
        path = data_path(item["loc"][:-1], data)
        key = item["loc"][-1]
        parent = model_at(path)
        declared = parent.model_fields.get(str(key)) if parent else None
        meaning = (declared.description or "").split(";")[0].rstrip(".") if declared else ""
        message = f"missing required key {key!r}" + (f": {meaning}" if meaning else "")
        return SpecError(path, message), Broken((*path, key))
    if kind == "extra_forbidden":
        key = str(path[-1]) if path else ""
        parent = model_at(path[:-1])
        known = list(parent.model_fields) if parent else []
        return SpecError(path, f"unknown key {key!r}" + suggest(key, known)), Broken(path, True)
    elif kind == "string_pattern_mismatch":
        pattern = item["ctx"]["pattern"]
        expected = PATTERNS.get(pattern, f"text matching {pattern}")
        message = f"expected {expected}, found {shown(found)}"
    elif kind == "string_too_long":
        length = f"{len(found):,} characters" if isinstance(found, str) else "text too long"
        message = f"at most {item['ctx']['max_length']:,} characters here, found {length}"
    elif kind == "literal_error":
        choices = re.findall(r"'((?:[^'\\]|\\.)*)'", item["ctx"]["expected"])
        message = f"expected one of {item['ctx']['expected']}, found {shown(found)}"
        guess = closest(found, choices) if isinstance(found, str) else None
        if guess is not None:
            message += f"; did you mean {guess!r}?"
    else:
        message = f"{item['msg']}, found {shown(found)}" if "input" in item else item["msg"]
    return SpecError(path, message), Broken(path)
