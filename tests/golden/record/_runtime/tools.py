"""Tools as the spec declares them, so the LM is told the spec's arguments.

``dspy.Tool`` left to itself describes a tool by its Python function, which is
the user's (regenerating never overwrites it): a spec that gains an argument,
or argument descriptions, would never reach the prompt. So the tool is built
with the spec's argument names, types (as JSON Schema) and descriptions, and a
function that does not take exactly the spec's arguments is an error at
start-up, naming what to change, rather than a tool that fails at each call.
"""

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import dspy
from pydantic import TypeAdapter


@dataclass(frozen=True)
class ToolArg:
    """An argument of a tool, as the spec gives it."""

    type: Any
    description: str = ""


def spec_tool(
    function: Callable[..., Any], *, name: str, desc: str, args: Mapping[str, ToolArg]
) -> dspy.Tool:
    """A ``dspy.Tool`` calling ``function``, described to the LM by the spec."""
    parameters = inspect.signature(function).parameters
    where = f"tool {name!r}: {function.__module__}.{function.__qualname__}()"
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    if missing := [] if takes_any else [arg for arg in args if arg not in parameters]:
        raise ValueError(
            f"{where} has no parameter {', '.join(missing)}, which the spec gives "
            "the tool; add it to the function"
        )
    required = [
        parameter
        for parameter in parameters.values()
        if parameter.default is parameter.empty
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]
    if unknown := [parameter.name for parameter in required if parameter.name not in args]:
        raise ValueError(
            f"{where} requires {', '.join(unknown)}, which the spec does not give the tool; "
            "add it to the spec's args or give it a default"
        )
    schema: dict[str, Any] = {}
    for arg, spec in args.items():
        schema[arg] = TypeAdapter(spec.type).json_schema()
        if spec.description:
            schema[arg]["description"] = spec.description
        if arg in parameters and parameters[arg].default is not parameters[arg].empty:
            schema[arg]["default"] = parameters[arg].default
    return dspy.Tool(
        function,
        name=name,
        desc=desc,
        args=schema,
        arg_types={arg: spec.type for arg, spec in args.items()},
        arg_desc={arg: spec.description for arg, spec in args.items() if spec.description},
    )
