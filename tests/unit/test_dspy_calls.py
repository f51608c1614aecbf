"""The keywords DSPy's call path takes for itself, read from DSPy's own source.

``dspy_forge.service.dspy_calls`` lists them by hand so the generated code can keep
client input away from them. This test reads them back from the functions a
request goes through, so a DSPy upgrade that starts consuming another keyword
fails here instead of opening a hole.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

import dspy
import pytest
from dspy.adapters.types.tool import Tool
from dspy.primitives.module import Module
from dspy.utils import callback

from dspy_forge.service.dspy_calls import CALL_KWARGS, TOOL_CALL_KWARGS, internal_names
from dspy_forge.spec.errors import SpecInvalid
from dspy_forge.spec.loader import load_spec_text

# Every function a program call passes its keyword arguments through.
PROGRAM_PATH: list[Callable[..., Any]] = [
    Module.__call__,
    Module.acall,
    dspy.Predict.__call__,
    dspy.Predict.acall,
    dspy.Predict.forward,
    dspy.Predict.aforward,
    dspy.Predict._forward_preprocess,
    dspy.Predict._forward_postprocess,
    dspy.ChainOfThought.forward,
    dspy.ChainOfThought.aforward,
    dspy.ReAct.forward,
    dspy.ReAct.aforward,
    callback.with_callbacks,
    dspy.streamify,
]
TOOL_PATH: list[Callable[..., Any]] = [
    Tool.__call__,
    Tool.acall,
    Tool._validate_and_parse_args,
    callback.with_callbacks,
]


def consumed_keywords(function: Callable[..., Any]) -> set[str]:
    """Names a function takes out of its ``**kwargs`` or binds before them.

    That is: the named parameters of the function and of every function defined
    in it (``with_callbacks``' wrappers), and every string key it pops, gets,
    tests with ``in`` or subscripts on its ``**`` parameter.
    """
    source = textwrap.dedent(inspect.getsource(inspect.unwrap(function)))
    tree = ast.parse(source)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args
            if arguments.kwarg is None:
                continue
            names |= {arg.arg for arg in (*arguments.posonlyargs, *arguments.args)}
            names |= {arg.arg for arg in arguments.kwonlyargs}
            names |= _keys_read(node, arguments.kwarg.arg)
    return names


def _keys_read(function: ast.AST, kwargs: str) -> set[str]:
    keys: set[str] = set()
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == kwargs
            and node.func.attr in {"pop", "get", "setdefault"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            keys.add(node.args[0].value)
        elif (
            isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Constant)
            and isinstance(node.left.value, str)
            and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
            and any(isinstance(c, ast.Name) and c.id == kwargs for c in node.comparators)
        ):
            keys.add(node.left.value)
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id == kwargs
            and isinstance(node.slice, ast.Constant)
        ):
            keys.add(node.slice.value)
    return keys


@pytest.mark.parametrize("function", PROGRAM_PATH, ids=lambda f: f.__qualname__)
def test_every_keyword_the_program_call_path_consumes_is_guarded(
    function: Callable[..., Any],
) -> None:
    missing = consumed_keywords(function) - CALL_KWARGS - {"args"}
    assert not missing, f"{function.__qualname__} consumes {missing}: add them to CALL_KWARGS"


@pytest.mark.parametrize("function", TOOL_PATH, ids=lambda f: f.__qualname__)
def test_every_keyword_the_tool_call_path_consumes_is_refused(
    function: Callable[..., Any],
) -> None:
    missing = consumed_keywords(function) - TOOL_CALL_KWARGS - {"args", "fn", "call_id"}
    # with_callbacks' helpers take their arguments as a dict, not as keywords.
    missing -= {"callbacks", "results", "exception", "kwargs"}
    assert not missing, f"{function.__qualname__} binds {missing}: add them to TOOL_CALL_KWARGS"


def test_the_reader_finds_the_keywords_dspy_is_known_to_take() -> None:
    """A check on the check: the names the security report found are read back."""
    found = set().union(*(consumed_keywords(f) for f in PROGRAM_PATH))
    assert {"config", "lm", "demos", "new_signature", "max_iters", "self", "instance"} <= found
    assert {"self", "instance"} <= set().union(*(consumed_keywords(f) for f in TOOL_PATH))


def test_inputs_named_like_call_keywords_get_names_that_cannot_collide() -> None:
    fields = ["config", "config_", "lm", "question", "answer"]
    renamed = internal_names(fields, ["config", "config_", "lm", "question"])
    assert renamed == {
        "config": "config__",
        "config_": "config_",
        "lm": "lm_",
        "question": "question",
    }
    assert not set(renamed.values()) & CALL_KWARGS
    assert len(set(renamed.values())) == len(renamed)


def test_a_tool_argument_dspy_binds_itself_is_a_located_error() -> None:
    spec = """\
version: 1
service: {name: tooly}
lm: {model: openai/gpt-4o-mini}
tools:
  lookup:
    description: Look something up.
    args:
      self: {type: str}
      instance: {type: str}
programs:
  agent: {module: ReAct, signature: "question -> answer", tools: [lookup]}
"""
    with pytest.raises(SpecInvalid) as raised:
        load_spec_text(spec)
    messages = {(error.path, error.message) for error in raised.value.errors}
    for arg in ("self", "instance"):
        assert any(
            path == ("tools", "lookup", "args", arg) and "Tool.acall" in message
            for path, message in messages
        ), messages
