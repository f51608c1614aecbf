"""tools.py: a tool is described to the LM by the spec, and its function must fit the spec."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from forge_service.runtime.tools import ToolArg, spec_tool

ARGS = {
    "query": ToolArg(str, "What to look for."),
    "limit": ToolArg(int),
}


async def search(query: str, limit: int = 3) -> str:
    return f"{query}:{limit}"


def test_spec_tool_describes_each_argument_by_its_json_schema_and_description() -> None:
    tool = spec_tool(search, name="search", desc="Search the web.", args=ARGS)
    assert (tool.name, tool.desc) == ("search", "Search the web.")
    assert tool.args == {
        "query": {"type": "string", "description": "What to look for."},
        "limit": {"type": "integer", "default": 3},
    }
    assert tool.arg_types == {"query": str, "limit": int}
    assert tool.arg_desc == {"query": "What to look for."}


def test_spec_tool_gives_a_literal_argument_its_choices() -> None:
    async def pick(color: str) -> str:
        return color

    args = {"color": ToolArg(Literal["red", "blue"], "A color.")}
    tool = spec_tool(pick, name="pick", desc="Pick.", args=args)
    assert tool.args["color"] == {
        "enum": ["red", "blue"],
        "type": "string",
        "description": "A color.",
    }


def test_spec_tool_refuses_a_function_without_a_parameter_the_spec_gives() -> None:
    async def narrow(query: str) -> str:
        return query

    with pytest.raises(ValueError, match=r"has no parameter limit, .*add it to the function") as e:
        spec_tool(narrow, name="search", desc="", args=ARGS)
    assert "tool 'search'" in str(e.value) and "narrow()" in str(e.value)


def test_spec_tool_refuses_a_required_parameter_the_spec_does_not_give() -> None:
    async def wide(query: str, limit: int, region: str) -> str:
        return query

    with pytest.raises(
        ValueError, match=r"requires region, .*add it to the spec's args or give it a default"
    ):
        spec_tool(wide, name="search", desc="", args=ARGS)


def test_spec_tool_accepts_an_extra_parameter_with_a_default() -> None:
    async def more(query: str, limit: int, region: str = "eu") -> str:
        return region

    tool = spec_tool(more, name="search", desc="", args=ARGS)
    assert set(tool.args) == {"query", "limit"}


def test_spec_tool_accepts_a_function_taking_keyword_arguments_for_the_spec_ones() -> None:
    async def anything(**kwargs: Any) -> str:
        return ",".join(sorted(kwargs))

    tool = spec_tool(anything, name="search", desc="", args=ARGS)
    assert set(tool.args) == {"query", "limit"}


async def test_spec_tool_calls_the_function_with_the_arguments_validated() -> None:
    tool = spec_tool(search, name="search", desc="", args=ARGS)
    assert await tool.acall(query="cats", limit=5) == "cats:5"
