"""Field types a spec may name, parsed into a closed grammar.

A type in the spec is a string such as ``list[str]`` or ``Literal['a', 'b'] | None``.
It is parsed with :mod:`ast` (never evaluated) and only the shapes below are accepted,
so a type can name nothing but what the generated code is meant to import.
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass
from typing import Any

from dspy_forge.render.literals import py_literal
from dspy_forge.spec.hints import closest

SCALARS = ("str", "int", "float", "bool")
# DSPy's own types that travel over HTTP as JSON: name in the spec -> annotation in code.
DSPY_TYPES = {"Image": "dspy.Image", "History": "dspy.History"}
SAMPLES: dict[str, Any] = {
    "str": "sample text",
    "int": 7,
    "float": 2.5,
    "bool": True,
    "Image": {"url": "data:image/png;base64,iVBORw0KGgo="},
    "History": {"messages": []},
}
SUPPORTED = (*SCALARS, "list[T]", "dict[str, T]", "Literal[...]", "T | None", *DSPY_TYPES)


class TypeSyntaxError(ValueError):
    """A type string outside the supported grammar."""


@dataclass(frozen=True)
class FieldType:
    """A parsed field type: its annotation in generated code and what it is made of."""

    annotation: str
    kind: str  # scalar | list | dict | literal | optional | dspy
    optional: bool = False
    literal_values: tuple[str | int | float | bool, ...] = ()
    uses_literal: bool = False
    uses_dspy_type: bool = False
    sample: Any = None  # a valid JSON value, for generated tests and examples

    @property
    def is_str(self) -> bool:
        """Whether values are plain text, the only kind token streaming reproduces exactly."""
        return self.annotation == "str"


def parse_type(text: str) -> FieldType:
    """Parse a spec type string, or raise :class:`TypeSyntaxError` saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise TypeSyntaxError("a type must be a non-empty string")
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise TypeSyntaxError(f"{text!r} is not a type expression ({exc.msg})") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise TypeSyntaxError(f"{text!r} is not a type expression ({exc})") from None
    return _parse(node, text)


def _parse(node: ast.expr, text: str) -> FieldType:
    if isinstance(node, ast.Name):
        if node.id in SCALARS:
            return FieldType(annotation=node.id, kind="scalar", sample=SAMPLES[node.id])
        if node.id in DSPY_TYPES:
            return FieldType(
                annotation=DSPY_TYPES[node.id],
                kind="dspy",
                uses_dspy_type=True,
                sample=SAMPLES[node.id],
            )
        guess = closest(node.id, [*SCALARS, *DSPY_TYPES, "list", "dict", "Literal"])
        hint = f"did you mean {guess!r}?" if guess else f"supported: {', '.join(SUPPORTED)}"
        raise TypeSyntaxError(f"unknown type {node.id!r}; {hint}")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = node.left, node.right
        if _is_none(right) and not _is_none(left):
            inner = _parse(left, text)
        elif _is_none(left) and not _is_none(right):
            inner = _parse(right, text)
        else:
            raise TypeSyntaxError("a union must be 'T | None'; other unions are not supported")
        if inner.optional:
            raise TypeSyntaxError("'| None' is given twice")
        return FieldType(
            annotation=f"{inner.annotation} | None",
            kind="optional",
            optional=True,
            literal_values=inner.literal_values,
            uses_literal=inner.uses_literal,
            uses_dspy_type=inner.uses_dspy_type,
            sample=inner.sample,
        )
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        head = node.value.id
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if head == "Optional" and len(args) == 1:
            return _parse(ast.BinOp(left=args[0], op=ast.BitOr(), right=ast.Constant(None)), text)
        if head == "list" and len(args) == 1:
            item = _parse(args[0], text)
            return _container(f"list[{item.annotation}]", "list", item, [item.sample])
        if head == "dict" and len(args) == 2:
            if not (isinstance(args[0], ast.Name) and args[0].id == "str"):
                raise TypeSyntaxError("dict keys must be str (JSON object keys are strings)")
            value = _parse(args[1], text)
            return _container(
                f"dict[str, {value.annotation}]", "dict", value, {"key": value.sample}
            )
        if head == "Literal":
            return _literal(args)
        guess = closest(head, ["list", "dict", "Literal", "Optional"])
        hint = f"; did you mean {guess}[...]?" if guess and guess != head else ""
        raise TypeSyntaxError(
            f"{ast.unparse(node)!r} is not supported; use list[T], dict[str, T] or Literal[...]"
            + hint
        )
    if _is_none(node):
        raise TypeSyntaxError("None alone is not a field type; write 'T | None'")
    raise TypeSyntaxError(f"{text!r} is not a supported type; supported: {', '.join(SUPPORTED)}")


def _container(annotation: str, kind: str, inner: FieldType, sample: Any) -> FieldType:
    return FieldType(
        annotation=annotation,
        kind=kind,
        uses_literal=inner.uses_literal,
        uses_dspy_type=inner.uses_dspy_type,
        sample=sample,
    )


def _literal(args: list[ast.expr]) -> FieldType:
    values: list[str | int | float | bool] = []
    for node in args:
        arg = _negated(node)
        if not isinstance(arg, ast.Constant) or not isinstance(arg.value, str | int | float | bool):
            raise TypeSyntaxError(
                "Literal[...] takes only string, number or boolean constants" + _quoted(args)
            )
        if isinstance(arg.value, float) and not math.isfinite(arg.value):
            raise TypeSyntaxError(f"Literal[...] takes only finite numbers, not {arg.value!r}")
        if arg.value in values:
            raise TypeSyntaxError(f"Literal[...] lists {arg.value!r} twice")
        values.append(arg.value)
    if not values:
        raise TypeSyntaxError("Literal[...] needs at least one value")
    annotation = f"Literal[{', '.join(py_literal(v) for v in values)}]"
    return FieldType(
        annotation=annotation,
        kind="literal",
        literal_values=tuple(values),
        uses_literal=True,
        sample=values[0],
    )


def _quoted(args: list[ast.expr]) -> str:
    """``Literal[billing, bug]`` names no constants: the form with its bare words quoted."""
    if not any(isinstance(arg, ast.Name) for arg in args):
        return ""
    parts = []
    for arg in args:
        if isinstance(arg, ast.Name) or (
            isinstance(arg, ast.Constant) and isinstance(arg.value, str)
        ):
            word = arg.id if isinstance(arg, ast.Name) else arg.value
            parts.append(json.dumps(word, ensure_ascii=False))
        else:
            parts.append(ast.unparse(arg))
    return f"; to list words, quote them: Literal[{', '.join(parts)}]"


def _negated(node: ast.expr) -> ast.expr:
    """``-3`` parses as an operation on 3; fold it into the constant -3."""
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and type(node.operand.value) in (int, float)
    ):
        return ast.Constant(-node.operand.value)
    return node


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None
