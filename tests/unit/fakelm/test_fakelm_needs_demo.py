"""The ``needs-demo`` switch: right answers only with a few-shot demo, so optimizing pays."""

from __future__ import annotations

import dspy

from dspy_forge.dev.fakelm import FakeLM
from dspy_forge.dev.fakelm.prompt import parse_messages
from dspy_forge.dev.fakelm.scenario import parse_scenario


def test_needs_demo_parses_and_combines() -> None:
    assert parse_scenario("needs-demo").needs_demo
    assert parse_scenario("needs-demo+words-3").words == 3
    assert not parse_scenario("echo").needs_demo


def test_without_a_demo_the_answer_is_prose(fake_lm: FakeLM) -> None:
    with dspy.context(lm=fake_lm.lm("needs-demo")):
        prediction = dspy.Predict("phrase -> echo")(phrase="red kite")
    assert prediction.echo != "red kite"


def test_with_a_demo_of_the_same_outputs_the_answer_is_the_input(fake_lm: FakeLM) -> None:
    program = dspy.Predict("phrase -> echo")
    program.demos = [dspy.Example(phrase="blue whale", echo="blue whale")]
    with dspy.context(lm=fake_lm.lm("needs-demo")):
        assert program(phrase="red kite").echo == "red kite"


def test_a_demo_of_other_outputs_does_not_count() -> None:
    system = "Your input fields are:\n1. `phrase` (str)\nYour output fields are:\n1. `echo` (str)\n"
    messages = [
        {"role": "system", "content": system},
        {"role": "user", "content": "[[ ## phrase ## ]]\nblue"},
        {"role": "assistant", "content": "[[ ## summary ## ]]\nblue\n\n[[ ## completed ## ]]"},
        {"role": "user", "content": "[[ ## phrase ## ]]\nred"},
    ]
    assert parse_messages(messages).demos == 0
    messages[2] = {"role": "assistant", "content": "[[ ## echo ## ]]\nblue"}
    assert parse_messages(messages).demos == 1
