"""The spec's ``chat`` and ``server.protocols``: defaults resolved once, wrong names located."""

from __future__ import annotations

import pytest

from dspy_forge.render.view import render_data
from dspy_forge.service.model import ChatModel
from dspy_forge.spec.errors import SpecInvalid
from dspy_forge.spec.loader import load_spec_text

BASE = """
version: 1
service: {name: demo}
lm: {model: openai/gpt-4o-mini}
"""


def chat_of(program: str, server: str = "") -> ChatModel:
    loaded = load_spec_text(BASE + server + "programs:\n  p:\n" + program)
    (model,) = loaded.model.programs
    return model.chat


def errors_of(program: str) -> dict[str, str]:
    with pytest.raises(SpecInvalid) as caught:
        load_spec_text(BASE + "programs:\n  p:\n" + program)
    return {error.dotted: error.message for error in caught.value.errors}


def test_defaults_are_the_first_str_input_and_the_first_streamed_str_output() -> None:
    chat = chat_of(
        """    module: ChainOfThought
    signature: "n: int, ctx: list[str], question, history: History -> score: float, note, answer"
    stream: [{field: answer}]
"""
    )
    assert chat == ChatModel("question", "history", "answer", "reasoning")


def test_without_a_streamed_output_the_content_is_the_first_str_output() -> None:
    chat = chat_of('    module: Predict\n    signature: "question -> score: float, note, answer"\n')
    assert chat == ChatModel("question", None, "note", None)


def test_without_str_fields_messages_and_replies_are_json() -> None:
    chat = chat_of('    module: Predict\n    signature: "n: int -> score: float"\n')
    assert chat == ChatModel(None, None, None, None)


def test_the_spec_names_each_field_and_can_turn_the_history_off() -> None:
    chat = chat_of(
        """    module: Predict
    signature: "topic, question, past: History -> draft, answer"
    chat: {message: question, history: false, content: answer}
"""
    )
    assert chat == ChatModel("question", None, "answer", None)


def test_wrong_names_and_types_are_located_with_hints() -> None:
    errors = errors_of(
        """    module: Predict
    signature: "question, n: int, past: History -> answer, score: float"
    chat: {message: questoin, history: n, content: score}
"""
    )
    assert errors == {
        "programs.p.chat.message": "no input named 'questoin'; did you mean 'question'?",
        "programs.p.chat.history": "'n' is int; it must be History",
        "programs.p.chat.content": "'score' is float; it must be str",
    }
    unknown = errors_of('    module: Predict\n    signature: "q -> a"\n    chat: {contents: a}\n')
    assert list(unknown) == ["programs.p.chat.contents"]


def test_the_server_section_turns_each_protocol_off() -> None:
    loaded = load_spec_text(
        BASE
        + "server: {protocols: {openai: false}}\n"
        + 'programs:\n  p: {module: Predict, signature: "q -> a"}\n'
    )
    server = render_data(loaded.model)["server"]
    assert server["protocol_openai"] == {"py": "False", "env": "false"}
    assert server["protocol_ai_sdk"] == {"py": "True", "env": "true"}
