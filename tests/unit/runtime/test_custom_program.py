"""program.py for modules the generator cannot see into: start-up checks and completion.

A Custom module's predictors are known only to the runtime: ``ServedProgram``
checks each listener against ``named_predictors()`` (listing them when one is
missing), ``load_state`` checks a saved state against them, and the final
Prediction completes, per field name, only the listener that streamed it last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dspy
import pytest
from forge_service.runtime.program import Listen, ServedProgram, load_state


class Inner(dspy.Module):
    def __init__(self) -> None:
        super().__init__()
        self.write_query = dspy.Predict("question -> query")


class Pipeline(dspy.Module):
    """A nested module and a ChainOfThought, as a user writes them."""

    def __init__(self) -> None:
        super().__init__()
        self.retrieve = Inner()
        self.answer = dspy.ChainOfThought("question, passages -> answer")

    async def aforward(self, **inputs: Any) -> dspy.Prediction:
        return dspy.Prediction(answer="final")


def test_listeners_attach_to_nested_predictors_by_their_names() -> None:
    program = ServedProgram(
        "rag",
        Pipeline(),
        listen=[Listen("query", "retrieve.write_query"), Listen("answer", "answer.predict")],
    )
    assert program.predictors == ("retrieve.write_query", "answer.predict")


def test_a_listener_naming_no_predictor_lists_the_modules_predictors() -> None:
    with pytest.raises(ValueError) as caught:
        ServedProgram("rag", Pipeline(), listen=[Listen("answer", "answer")])
    assert str(caught.value) == (
        "rag: no predictor named 'answer' for the listener of 'answer'; "
        "the module's predictors are: retrieve.write_query, answer.predict"
    )


def test_a_listener_on_a_field_its_predictor_lacks_lists_its_outputs() -> None:
    with pytest.raises(
        ValueError,
        match=r"'answer.predict' does not output 'query' "
        r"\(its outputs are: reasoning, answer\)",
    ):
        ServedProgram("rag", Pipeline(), listen=[Listen("query", "answer.predict")])


def test_the_prediction_completes_the_listener_that_streamed_the_field_last() -> None:
    module = Pipeline()
    module.draft = dspy.Predict("question -> answer")
    program = ServedProgram(
        "rag", module, listen=[Listen("answer", "draft"), Listen("answer", "answer.predict")]
    )
    assert [x.predictor for x in program._completed({"answer": "draft"})] == ["draft"]
    assert [x.predictor for x in program._completed({"answer": "answer.predict"})] == [
        "answer.predict"
    ]
    # Nothing streamed (a cache hit): the last one listed.
    assert [x.predictor for x in program._completed({})] == ["answer.predict"]


def test_load_state_takes_a_state_saved_from_the_same_module(tmp_path: Path) -> None:
    saved = Pipeline()
    saved.answer.predict.demos = [dspy.Example(question="q", passages="p", answer="a")]
    saved.save(str(tmp_path / "state.json"))
    fresh = Pipeline()
    load_state(fresh, tmp_path / "state.json")
    assert len(fresh.answer.predict.demos) == 1


def test_load_state_refuses_a_state_of_another_module(tmp_path: Path) -> None:
    dspy.ChainOfThought("question -> answer").save(str(tmp_path / "state.json"))
    with pytest.raises(ValueError) as caught:
        load_state(Pipeline(), tmp_path / "state.json")
    assert str(caught.value) == (
        "state.json was saved from another module: it holds predict, "
        "but this module's predictors are retrieve.write_query, answer.predict"
    )


def test_load_state_refuses_a_state_of_another_signature(tmp_path: Path) -> None:
    other = Pipeline()
    other.answer = dspy.ChainOfThought("question -> answer")
    other.save(str(tmp_path / "state.json"))
    with pytest.raises(ValueError, match=r"predictor 'answer\.predict' was saved with 3 fields"):
        load_state(Pipeline(), tmp_path / "state.json")
