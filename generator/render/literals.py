"""Escaping of spec values into the source languages the templates write.

Every string from a spec reaches generated files only through these functions
(registered as Jinja filters by the renderer), never by hand-written quoting.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import tomlkit


def py_str(value: str) -> str:
    """A Python string literal for ``value``, quoted as ``ruff format`` would quote it.

    ``repr`` does the escaping; only the quote is changed afterwards, to the one
    ruff prefers (double, unless the text holds more double quotes than single),
    so that generated code is already formatted whatever the text.
    """
    literal = repr(value)
    quote = "'" if value.count('"') > value.count("'") else '"'
    if literal[0] == quote:
        return literal
    other = literal[0]

    def requote(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "\\" + other:
            return other  # no longer needs its backslash
        return "\\" + quote if token == quote else token

    # Escape pairs are matched whole, so an escaped backslash is never split.
    return quote + re.sub(r"""\\.|["']""", requote, literal[1:-1]) + quote


def py_literal(value: Any) -> str:
    """A Python literal for a JSON-like value (str, number, bool, None, list, dict)."""
    if isinstance(value, str):
        return py_str(value)
    if value is None or isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no Python literal")
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(py_literal(item) for item in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{py_str(str(k))}: {py_literal(v)}" for k, v in value.items())
        return "{" + items + "}"
    raise TypeError(f"no Python literal for {type(value).__name__}")


def toml_str(value: str) -> str:
    """A TOML basic string for ``value``."""
    return tomlkit.string(value).as_string()


def json_str(value: Any) -> str:
    """JSON for ``value``; also a valid YAML flow scalar."""
    return json.dumps(value, ensure_ascii=False)


def md_text(value: str) -> str:
    """Text safe to place inside Markdown prose: HTML and Markdown specials escaped."""
    escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for char in "\\`*_[]#|":
        escaped = escaped.replace(char, "\\" + char)
    return " ".join(escaped.split())
