"""The ``echo`` switch: str outputs repeat the first input, so an eval's score is known."""

from __future__ import annotations

import dspy
import pytest

from dspy_forge.dev.fakelm import FakeLM
from dspy_forge.dev.fakelm.scenario import ScenarioError, parse_scenario


def test_echo_parses_and_combines() -> None:
    assert parse_scenario("echo").echo
    assert parse_scenario("echo+delay-5ms").delay_s == 0.005
    assert not parse_scenario("default").echo
    with pytest.raises(ScenarioError, match="echo"):
        parse_scenario("echo-please")


def test_echo_answers_str_fields_with_the_first_input(fake_lm: FakeLM) -> None:
    lm = fake_lm.lm("echo")
    program = dspy.Predict("question, context -> answer, count: int")
    with dspy.context(lm=lm):
        prediction = program(question="What is the capital of France?", context="ignored")
    assert prediction.answer == "What is the capital of France?"
    assert isinstance(prediction.count, int)  # other types keep their valid values


def test_without_echo_the_answer_is_prose(fake_lm: FakeLM) -> None:
    with dspy.context(lm=fake_lm.lm()):
        prediction = dspy.Predict("question -> answer")(question="Paris?")
    assert prediction.answer != "Paris?"
