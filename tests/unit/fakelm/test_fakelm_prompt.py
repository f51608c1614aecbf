"""The prompt parser against messages formatted by DSPy's own adapters (no server needed)."""

from __future__ import annotations

from typing import Any, Literal

import dspy
import pydantic

from dspy_forge.dev.fakelm.prompt import parse_messages


class Item(pydantic.BaseModel):
    name: str
    qty: int


class Typed(dspy.Signature):
    """Answer with many types."""

    question: str = dspy.InputField(desc="the question")
    context: list[str] = dspy.InputField()
    answer: str = dspy.OutputField()
    count: int = dspy.OutputField(ge=2, le=5)
    score: float = dspy.OutputField()
    ok: bool = dspy.OutputField()
    tags: list[str] = dspy.OutputField(min_length=3)
    weights: dict[str, int] = dspy.OutputField()
    label: Literal["pos", "neg", "it's"] = dspy.OutputField()
    maybe: int | None = dspy.OutputField()
    item: Item = dspy.OutputField()


def chat_messages(signature: Any, inputs: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    adapter = kwargs.pop("adapter", None) or dspy.ChatAdapter()
    return adapter.format(signature, kwargs.pop("demos", []), inputs)


def test_output_fields_types_and_inputs() -> None:
    messages = chat_messages(Typed, {"question": "Why?", "context": ["a", "b"]})
    prompt = parse_messages(messages)
    outputs = {spec.name: spec for spec in prompt.shape.outputs}
    assert list(outputs) == [
        "answer", "count", "score", "ok", "tags", "weights", "label", "maybe", "item"
    ]  # fmt: skip
    assert [outputs[n].kind for n in ("answer", "count", "score", "ok")] == [
        "str", "int", "float", "bool"
    ]  # fmt: skip
    assert outputs["count"].schema == {"type": "integer", "minimum": 2, "maximum": 5}
    assert outputs["tags"].schema == {"type": "array", "items": {"type": "string"}, "minItems": 3}
    assert outputs["weights"].schema == {
        "type": "object",
        "additionalProperties": {"type": "integer"},
    }
    assert outputs["label"].kind == "choice"
    assert outputs["label"].choices == ("pos", "neg", "it's")
    assert outputs["maybe"].kind == "json"
    assert outputs["item"].schema is not None
    assert outputs["item"].schema["required"] == ["name", "qty"]
    assert prompt.shape.input_names == ("question", "context")
    assert prompt.inputs == {"question": "Why?", "context": '["a", "b"]'}
    assert not prompt.json_mode
    assert not prompt.shape.is_react


def test_demos_and_history_use_the_last_user_message() -> None:
    demos = [dspy.Example(question="first?", answer="one")]
    messages = chat_messages(
        dspy.Signature("question -> answer"), {"question": "last?"}, demos=demos
    )
    assert len(messages) == 4
    assert parse_messages(messages).inputs == {"question": "last?"}


def test_json_adapter_prompt_is_json_mode_with_the_same_fields() -> None:
    messages = chat_messages(Typed, {"question": "Why?", "context": []}, adapter=dspy.JSONAdapter())
    prompt = parse_messages(messages)
    assert prompt.json_mode
    outputs = {spec.name: spec for spec in prompt.shape.outputs}
    assert outputs["item"].kind == "json"
    assert outputs["label"].choices == ("pos", "neg", "it's")
    assert prompt.inputs["question"] == "Why?"


def test_response_format_asks_for_json() -> None:
    messages = chat_messages(dspy.Signature("question -> answer"), {"question": "q"})
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    wrapped = {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}
    prompt = parse_messages(messages, wrapped)
    assert prompt.json_mode
    assert prompt.response_schema == schema
    assert parse_messages(messages, {"type": "json_object"}).json_mode


async def lookup(query: str, limit: int = 3) -> str:
    """Look something up."""
    return query


def convert(amount: float, units: list[str], options: dict[str, bool]) -> str:
    return str(amount)


def test_react_tools_arguments_and_trajectory_steps() -> None:
    react = dspy.ReAct("question -> answer", tools=[lookup, convert])
    trajectory: dict[str, Any] = {}
    messages = chat_messages(
        react.react.signature,
        {"question": "q?", "trajectory": react._format_trajectory(trajectory)},
    )
    prompt = parse_messages(messages)
    assert prompt.shape.is_react
    assert [tool.name for tool in prompt.shape.tools] == ["lookup", "convert", "finish"]
    lookup_tool, convert_tool, finish_tool = prompt.shape.tools
    assert lookup_tool.required == ("query",)
    assert lookup_tool.args["limit"] == {"type": "integer", "default": 3}
    assert convert_tool.required == ("amount", "units", "options")
    assert finish_tool.args == {}
    assert prompt.trajectory_steps == 0

    for step in range(2):
        trajectory.update(
            {
                f"thought_{step}": "thinking",
                f"tool_name_{step}": "lookup",
                f"tool_args_{step}": {"query": "x"},
                f"observation_{step}": "found",
            }
        )
    messages = chat_messages(
        react.react.signature,
        {"question": "q?", "trajectory": react._format_trajectory(trajectory)},
    )
    prompt = parse_messages(messages)
    assert prompt.trajectory_steps == 2
    assert prompt.inputs["question"] == "q?"
    assert prompt.inputs["trajectory"].startswith("[[ ## thought_0 ## ]]")


def test_plain_chat_without_dspy_structure() -> None:
    prompt = parse_messages([{"role": "user", "content": [{"type": "text", "text": "Hello"}]}])
    assert prompt.shape.outputs == ()
    assert not prompt.json_mode
