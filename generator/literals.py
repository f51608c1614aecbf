"""Escaping of spec values into the source languages the templates write.

Every string from a spec reaches generated files only through these functions
(registered as Jinja filters by the renderer), never by hand-written quoting.
"""

from __future__ import annotations

import json
import math
from typing import Any

import tomlkit


def py_str(value: str) -> str:
    """A Python string literal for ``value``, in the double-quoted form ruff formats to.

    ``repr`` does the escaping; only the choice of quote is adjusted, so that the
    generated code is already what ``ruff format`` would write.
    """
    literal = repr(value)
    if literal.startswith("'") and '"' not in value:
        # repr chose single quotes only because the text has no quote of either kind.
        return f'"{literal[1:-1]}"'
    return literal


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
