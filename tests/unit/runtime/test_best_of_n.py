"""runtime/best_of_n.py: DSPy's best-of-N rule, served async, on one shared module.

Each attempt is one call of the one wrapped module with its own rollout id at
temperature 1.0; the first attempt reaching the threshold wins, else the best
reward; failed attempts are skipped, all failing re-raises the last error, a
cancellation is never swallowed, and nothing on the module changes per request.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import dspy
import pytest
from dspy.utils import DummyLM
from forge_service.runtime.best_of_n import BestOfN


class Scripted(dspy.Module):
    """A module answering from a script per question and attempt; it records each call."""

    def __init__(self, script: dict[str, list[str | BaseException]]) -> None:
        super().__init__()
        self.predict = dspy.Predict("question -> answer")
        self.script = script
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _answer(self, question: str, config: dict[str, Any]) -> dspy.Prediction:
        self.calls.append((question, config))
        item = self.script[question][config["rollout_id"]]
        if isinstance(item, BaseException):
            raise item
        return dspy.Prediction(answer=item)

    async def aforward(self, question: str, config: dict[str, Any]) -> dspy.Prediction:
        await asyncio.sleep(0)  # let concurrent calls interleave
        return self._answer(question, config)

    def forward(self, question: str, config: dict[str, Any]) -> dspy.Prediction:
        return self._answer(question, config)


def length(args: dict[str, Any], prediction: dspy.Prediction) -> float:
    return float(len(prediction.answer))


def best_of(script: dict[str, list[str | BaseException]], **kwargs: Any) -> BestOfN:
    options: dict[str, Any] = {"attempts": 3, "reward": length, "threshold": 2.0, **kwargs}
    return BestOfN(Scripted(script), **options)


def run(module: BestOfN, question: str = "q") -> dspy.Prediction:
    return asyncio.run(module.acall(question=question))


@pytest.mark.parametrize("call", ["async", "sync"])
def test_the_first_attempt_reaching_the_threshold_is_the_answer(call: str) -> None:
    module = best_of({"q": ["a", "bb", "cccc"]})
    found = run(module) if call == "async" else module(question="q")
    assert found.answer == "bb"
    assert module.module.calls == [
        ("q", {"rollout_id": 0, "temperature": 1.0}),
        ("q", {"rollout_id": 1, "temperature": 1.0}),
    ]


@pytest.mark.parametrize("call", ["async", "sync"])
def test_without_one_reaching_it_the_best_of_n_wins_the_first_of_equals(call: str) -> None:
    module = best_of({"q": ["bb", "a", "bb"]}, threshold=10.0)
    found = run(module) if call == "async" else module(question="q")
    assert found.answer == "bb" and len(module.module.calls) == 3
    module = best_of({"q": ["a", "ccc", "bb"]}, threshold=10.0)
    assert run(module).answer == "ccc"


def test_a_failing_attempt_is_skipped() -> None:
    module = best_of({"q": [RuntimeError("LM down"), "a", "bb"]})
    assert run(module).answer == "bb"
    assert len(module.module.calls) == 3


def test_a_reward_that_raises_fails_only_its_attempt() -> None:
    def picky(args: dict[str, Any], prediction: dspy.Prediction) -> float:
        if prediction.answer == "boom":
            raise ValueError("cannot score")
        return 1.0

    assert run(best_of({"q": ["boom", "ok", "x"]}, reward=picky, threshold=1.0)).answer == "ok"


def test_every_attempt_failing_raises_the_last_error() -> None:
    module = best_of({"q": [RuntimeError("one"), RuntimeError("two"), ValueError("three")]})
    with pytest.raises(ValueError, match="three"):
        run(module)
    with pytest.raises(ValueError, match="three"):
        module(question="q")


def test_a_cancellation_is_never_swallowed() -> None:
    module = best_of({"q": [asyncio.CancelledError(), "bb", "bb"]})
    with pytest.raises(asyncio.CancelledError):
        run(module)
    assert len(module.module.calls) == 1


def test_concurrent_calls_share_the_module_and_change_nothing_on_it() -> None:
    module = best_of(
        {
            "fails": [RuntimeError("one"), RuntimeError("two"), "a"],
            "passes": ["bb", "x", "x"],
        }
    )
    before = {k: v for k, v in vars(module).items() if k != "module"}
    before = copy.copy(before)

    async def both() -> list[dspy.Prediction]:
        return list(
            await asyncio.gather(module.acall(question="fails"), module.acall(question="passes"))
        )

    first, second = asyncio.run(both())
    assert (first.answer, second.answer) == ("a", "bb")
    assert {k: v for k, v in vars(module).items() if k != "module"} == before
    # The same again: a request's failures leave the next request all its attempts.
    module.module.calls.clear()
    assert run(module, "fails").answer == "a" and len(module.module.calls) == 3


def test_attempts_reach_the_lm_as_distinct_rollouts_and_only_the_answer_is_traced() -> None:
    lm = DummyLM([{"reasoning": "r", "answer": a} for a in ["a", "bb", "cccc"]])
    module = BestOfN(
        dspy.ChainOfThought("question -> answer"), attempts=3, reward=length, threshold=2
    )
    module.set_lm(lm)
    with dspy.context(trace=[]):
        assert module(question="q").answer == "bb"
        trace = list(dspy.settings.trace)
    assert [entry["kwargs"] for entry in lm.history] == [
        {"rollout_id": 0, "temperature": 1.0},
        {"rollout_id": 1, "temperature": 1.0},
    ]
    assert len(trace) == 1 and trace[0][2].answer == "bb"  # an optimizer sees the answer's


def test_the_reward_is_no_predictor_of_the_program_even_when_a_module() -> None:
    judge = dspy.Predict("answer -> score: float")
    module = BestOfN(
        dspy.ChainOfThought("question -> answer"),
        attempts=2,
        reward=judge,  # type: ignore[arg-type]
        threshold=1.0,
    )
    assert [name for name, _ in module.named_predictors()] == ["module.predict"]
    assert list(module.dump_state()) == ["module.predict"]
