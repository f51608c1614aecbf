"""Pointing a program's state: at a file edits the spec's text as little as it can."""

from __future__ import annotations

import pytest

from dspy_forge.spec.edit import EditRefused, set_program_state, yaml_scalar

SPEC = """\
version: 1
service: {name: s}
lm: {model: openai/x}
programs:
  # the answering program
  qa:
    module: Predict  # one predictor
    signature: "q -> a"
  other:
    module: Predict
    signature: "q -> a"
"""


def test_a_state_line_goes_in_after_module_and_nothing_else_changes() -> None:
    edited = set_program_state(SPEC, "qa", "optimized/qa.json")
    assert edited == SPEC.replace(
        "    module: Predict  # one predictor\n",
        "    module: Predict  # one predictor\n    state: optimized/qa.json\n",
    )


def test_an_existing_state_gets_the_new_value_in_place() -> None:
    text = SPEC.replace(
        "  other:\n    module: Predict\n",
        "  other:\n    module: Predict\n    state: 'old.json'   # kept\n",
    )
    edited = set_program_state(text, "other", "optimized/other.json")
    assert "    state: optimized/other.json   # kept\n" in edited
    assert edited.replace("optimized/other.json", "'old.json'") == text


def test_line_endings_are_kept() -> None:
    text = SPEC.replace("\n", "\r\n")
    edited = set_program_state(text, "qa", "s.json")
    assert "\n" not in edited.replace("\r\n", "")
    assert "    state: s.json\r\n" in edited


def test_a_path_that_yaml_would_misread_is_quoted() -> None:
    assert yaml_scalar("optimized/qa.json") == "optimized/qa.json"
    assert yaml_scalar("true") == '"true"'
    assert yaml_scalar("a b: c.json") == '"a b: c.json"'
    edited = set_program_state(SPEC, "qa", "my states/#1.json")
    assert '    state: "my states/#1.json"\n' in edited


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            SPEC.replace(
                '  qa:\n    module: Predict  # one predictor\n    signature: "q -> a"\n',
                '  qa: {module: Predict, signature: "q -> a"}\n',
            ),
            "flow mapping",
        ),
        (
            SPEC.replace(
                "  other:\n    module: Predict\n",
                "  other:\n    module: Predict\n    state: |\n      x.json\n",
            ),
            "one line",
        ),
        (SPEC, "no program 'missing'"),
    ],
)
def test_what_cannot_be_edited_surely_is_refused(text: str, reason: str) -> None:
    program = "missing" if "no program" in reason else ("qa" if "flow" in reason else "other")
    with pytest.raises(EditRefused, match=reason):
        set_program_state(text, program, "s.json")
