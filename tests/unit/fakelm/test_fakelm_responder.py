"""Replies are deterministic and parse, with DSPy's own adapters, into valid typed values."""

from __future__ import annotations

import datetime
import enum
import random
import uuid
from typing import Any, Literal

import dspy
import jsonschema
import pydantic
import pytest

from dspy_forge.dev.fakelm.prompt import parse_messages
from dspy_forge.dev.fakelm.responder import compose_reply, value_for_schema


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Part(pydantic.BaseModel):
    label: str
    size: float = pydantic.Field(gt=0, lt=1)


class Node(pydantic.BaseModel):
    name: str
    children: list[Node] = []


class Order(pydantic.BaseModel):
    id: uuid.UUID
    when: datetime.datetime
    parts: list[Part] = pydantic.Field(min_length=1)
    color: Color
    note: str | None = None
    pair: tuple[int, str]
    tree: Node


class Everything(dspy.Signature):
    """Produce one value of each kind."""

    question: str = dspy.InputField()
    text: str = dspy.OutputField()
    number: int = dspy.OutputField(gt=10, lt=13)
    ratio: float = dspy.OutputField(ge=0, le=1)
    flag: bool = dspy.OutputField()
    words: list[str] = dspy.OutputField()
    counts: dict[str, int] = dspy.OutputField()
    mood: Literal["happy", "sad"] = dspy.OutputField()
    level: Literal[1, 2, 3] = dspy.OutputField()
    color: Color = dspy.OutputField()
    maybe_text: str | None = dspy.OutputField()
    maybe_number: int | None = dspy.OutputField()
    when: datetime.date = dspy.OutputField()
    order: Order = dspy.OutputField()
    orders: list[Order] = dspy.OutputField()
    short: str = dspy.OutputField(max_length=12)


def reply_for(signature: Any, inputs: dict[str, Any], adapter: Any = None, **kwargs: Any) -> str:
    messages = (adapter or dspy.ChatAdapter()).format(signature, [], inputs)
    return compose_reply(parse_messages(messages), **kwargs)


@pytest.mark.parametrize("adapter", [dspy.ChatAdapter(), dspy.JSONAdapter()], ids=["chat", "json"])
def test_every_type_parses_with_the_adapter(adapter: Any) -> None:
    reply = reply_for(Everything, {"question": "What now?"}, adapter)
    values = adapter.parse(Everything, reply)
    assert len(values["text"].split()) == 20
    assert 10 < values["number"] < 13
    assert 0 <= values["ratio"] <= 1
    assert isinstance(values["flag"], bool)
    assert values["words"] and all(isinstance(w, str) for w in values["words"])
    assert values["counts"] and all(isinstance(v, int) for v in values["counts"].values())
    assert values["mood"] == "happy"
    assert values["level"] == 1
    assert values["color"] is Color.RED
    assert isinstance(values["maybe_text"], str) and not values["maybe_text"].startswith('"')
    assert isinstance(values["maybe_number"], int)
    assert isinstance(values["when"], datetime.date)
    assert isinstance(values["order"], Order)
    assert values["orders"] and isinstance(values["orders"][0], Order)
    assert len(values["short"]) <= 12


def test_chat_reply_layout() -> None:
    reply = reply_for(dspy.Signature("question -> answer, confidence: float"), {"question": "q"})
    assert reply.startswith("[[ ## answer ## ]]\n")
    assert "\n\n[[ ## confidence ## ]]\n" in reply
    assert reply.endswith("\n\n[[ ## completed ## ]]")


def test_same_question_same_answer_different_question_different_answer() -> None:
    signature = dspy.Signature("question -> answer")
    first = reply_for(signature, {"question": "What is DSPy?"})
    assert first == reply_for(signature, {"question": "What is DSPy?"})
    assert first != reply_for(signature, {"question": "What is FastAPI?"})


def test_word_count_is_configurable() -> None:
    reply = reply_for(dspy.Signature("question -> answer"), {"question": "q"}, words=5)
    answer = dspy.ChatAdapter().parse(dspy.Signature("question -> answer"), reply)["answer"]
    assert len(answer.split()) == 5


def test_plain_chat_gets_a_sentence() -> None:
    reply = compose_reply(parse_messages([{"role": "user", "content": "hello"}]), words=4)
    assert len(reply.split()) == 4 and reply.endswith(".")


async def search(query: str, limit: int = 3) -> str:
    """Search."""
    return query


def compute(amount: float, units: list[str], options: dict[str, bool], mode: Color) -> str:
    return "ok"


def react_reply(trajectory: dict[str, Any], steps: int) -> dict[str, Any]:
    react = dspy.ReAct("question -> answer", tools=[compute, search])
    inputs = {"question": "q", "trajectory": react._format_trajectory(trajectory)}
    messages = dspy.ChatAdapter().format(react.react.signature, [], inputs)
    reply = compose_reply(parse_messages(messages), react_steps=steps)
    values = dspy.ChatAdapter().parse(react.react.signature, reply)
    if values["next_tool_name"] != "finish":
        # DSPy validates the arguments against the tool's schema before calling it.
        react.tools[values["next_tool_name"]]._validate_and_parse_args(**values["next_tool_args"])
    return values


def test_react_calls_the_first_tool_with_valid_arguments_then_finishes() -> None:
    first = react_reply({}, steps=1)
    assert first["next_tool_name"] == "compute"
    assert set(first["next_tool_args"]) == {"amount", "units", "options", "mode"}
    trajectory = {
        "thought_0": "t",
        "tool_name_0": "compute",
        "tool_args_0": first["next_tool_args"],
        "observation_0": "ok",
    }
    assert react_reply(trajectory, steps=1) == {
        "next_thought": react_reply(trajectory, steps=1)["next_thought"],
        "next_tool_name": "finish",
        "next_tool_args": {},
    }
    assert react_reply(trajectory, steps=2)["next_tool_name"] == "compute"


@pytest.mark.parametrize(
    "annotation",
    [
        Order,
        list[Part],
        dict[str, list[int]],
        tuple[int, str, bool],
        Node,
        Literal["x", "y"] | None,
    ],
)
def test_schema_values_validate(annotation: Any) -> None:
    schema = pydantic.TypeAdapter(annotation).json_schema()
    value = value_for_schema(schema, random.Random(7))
    jsonschema.validate(value, schema)
    pydantic.TypeAdapter(annotation).validate_python(value)


def test_json_mode_from_response_format_schema() -> None:
    schema = {
        "type": "object",
        "properties": {"summary": {"type": "string"}, "stars": {"type": "integer", "maximum": 5}},
        "required": ["summary", "stars"],
    }
    messages = [{"role": "user", "content": "Review this."}]
    response_format = {"type": "json_schema", "json_schema": {"name": "r", "schema": schema}}
    reply = compose_reply(parse_messages(messages, response_format), words=6)
    value = pydantic.TypeAdapter(dict[str, Any]).validate_json(reply)
    jsonschema.validate(value, schema)
    assert len(value["summary"].split()) == 6
