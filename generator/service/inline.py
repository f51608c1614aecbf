"""Inline signatures: ``"question, context: list[str] -> answer"`` as input and output fields."""

from __future__ import annotations

import re
from typing import Any


def split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part.strip() for part in parts]


def parse_inline(text: str) -> tuple[dict[str, Any], dict[str, Any]] | str:
    """Parse 'a, b: int -> c: list[str]' into field maps, or return what is wrong."""
    from dspy_forge.spec.contract import FieldSpec

    sides = text.split("->")
    if len(sides) != 2:
        return "an inline signature has exactly one '->' between inputs and outputs"
    result = []
    for side in sides:
        fields: dict[str, Any] = {}
        if not side.strip():
            return "an inline signature needs at least one field on each side of '->'"
        for part in split_top_level(side):
            name, _, type_text = part.partition(":")
            name = name.strip()
            # ASCII only, as for named fields: Python would NFKC-normalize other names.
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name):
                return f"{name!r} is not a valid field name (ASCII letters, digits and '_')"
            if name in fields:
                return f"field {name!r} is given twice"
            # Not validated again: the type is checked by parse_type, whatever its length.
            fields[name] = FieldSpec.model_construct(type=type_text.strip() or "str")
        result.append(fields)
    return result[0], result[1]
