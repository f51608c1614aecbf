"""json_runs.py through Runs.predict and Runs.batch: runs kept only while the client waits."""

from __future__ import annotations

import asyncio
from typing import Any

import dspy
import pytest
from fastapi.exceptions import RequestValidationError
from forge_service.runtime.errors import RunFailed
from forge_service.runtime.http import ErrorBody
from forge_service.runtime.metrics import Metrics
from forge_service.runtime.program import ServedProgram
from forge_service.runtime.runs import Runs
from pydantic import BaseModel

from .helpers import Answer, Ask, FakeProgram, Receive, answer, count, hang, new_runs, until


class Result(BaseModel):
    outputs: Answer | None = None
    error: ErrorBody | None = None


async def predict(runs: Runs, program: Any, receive: Receive, question: str = "q") -> Any:
    return await runs.predict(program, Ask(question=question), receive)


async def test_a_json_run_answers_its_prediction_while_the_client_stays(
    metrics: Metrics, receive: Receive
) -> None:
    program = ServedProgram("qa", dspy.Predict("question -> answer"))
    program.module.set_lm(dspy.utils.DummyLM([{"answer": "Paris"}]))
    runs = new_runs(metrics)
    prediction = await runs.predict(program, Ask(question="Capital of France?"), receive)
    assert prediction.answer == "Paris"
    assert runs.active == 0
    assert count(metrics, "qa", "json", "ok") == 1


async def test_a_json_run_is_cancelled_when_its_client_disconnects(
    metrics: Metrics, receive: Receive
) -> None:
    runs = new_runs(metrics)
    program = FakeProgram(predict=hang())
    call = asyncio.ensure_future(predict(runs, program, receive))
    await until(lambda: runs.active == 1)
    receive.leave()
    with pytest.raises(RunFailed) as excinfo:
        await asyncio.wait_for(call, 1.0)
    failure = excinfo.value.failure
    assert (failure.status, failure.code) == (499, "disconnected")
    assert excinfo.value.__cause__ is None  # a departure, not a failure to log
    assert program.cancelled
    assert runs.active == 0 and not runs.json_runs.working
    assert count(metrics, "qa", "json", "disconnected") == 1


async def test_a_json_run_is_cancelled_when_its_handler_is(
    metrics: Metrics, receive: Receive
) -> None:
    runs = new_runs(metrics)
    program = FakeProgram(predict=hang())
    call = asyncio.ensure_future(predict(runs, program, receive))
    await until(lambda: runs.active == 1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert program.cancelled and runs.active == 0


async def test_a_json_run_past_its_deadline_is_504_timeout(
    metrics: Metrics, receive: Receive
) -> None:
    runs = new_runs(metrics, deadline=0.02)
    with pytest.raises(RunFailed) as excinfo:
        await predict(runs, FakeProgram(predict=hang()), receive)
    assert (excinfo.value.failure.status, excinfo.value.failure.code) == (504, "timeout")
    assert count(metrics, "qa", "json", "timeout") == 1
    assert runs.active == 0


async def test_a_json_run_that_fails_reports_the_failure_and_keeps_the_cause_for_the_log(
    metrics: Metrics, receive: Receive
) -> None:
    runs = new_runs(metrics)
    program = FakeProgram(predict=answer("", fail=RuntimeError("provider text")))
    with pytest.raises(RunFailed) as excinfo:
        await predict(runs, program, receive)
    assert excinfo.value.failure.code == "upstream_error"
    assert isinstance(excinfo.value.__cause__, RuntimeError)
    assert count(metrics, "qa", "json", "upstream_error") == 1


async def test_a_json_run_refused_when_full_is_overloaded_and_never_starts(
    metrics: Metrics, receive: Receive
) -> None:
    runs = new_runs(metrics, max_concurrent=0)
    program = FakeProgram(predict=hang())
    with pytest.raises(RunFailed) as excinfo:
        await predict(runs, program, receive)
    assert excinfo.value.failure.code == "overloaded"
    assert not program.cancelled
    assert count(metrics, "qa", "json", "overloaded") == 1


async def test_drain_cancels_json_requests_left_after_the_grace_period_503_shutting_down(
    metrics: Metrics, receive: Receive
) -> None:
    runs = new_runs(metrics, shutdown_grace=0.02)
    program = FakeProgram(predict=hang())
    call = asyncio.ensure_future(predict(runs, program, receive))
    await until(lambda: runs.active == 1)
    await runs.drain()
    with pytest.raises(RunFailed) as excinfo:
        await asyncio.wait_for(call, 1.0)
    assert (excinfo.value.failure.status, excinfo.value.failure.code) == (503, "shutting_down")
    assert runs.active == 0
    assert count(metrics, "qa", "json", "shutting_down") == 1


async def batch(runs: Runs, program: Any, questions: list[str], receive: Receive) -> list[Result]:
    bodies = [Ask(question=question) for question in questions]
    return await runs.batch(program, bodies, Answer.from_prediction, Result, receive)


async def test_a_batch_answers_every_input_in_order(metrics: Metrics, receive: Receive) -> None:
    async def echo(inputs: dict[str, Any]) -> dspy.Prediction:
        await asyncio.sleep(0.01 * (3 - int(inputs["question"])))  # later ones finish first
        return dspy.Prediction(answer=f"a{inputs['question']}")

    runs = new_runs(metrics)
    results = await batch(runs, FakeProgram(predict=echo), ["1", "2", "3"], receive)
    assert [result.outputs.answer for result in results if result.outputs] == ["a1", "a2", "a3"]
    assert count(metrics, "qa", "batch", "ok") == 3


async def test_a_batch_runs_at_most_batch_parallelism_items_at_once(
    metrics: Metrics, receive: Receive
) -> None:
    running = highest = 0

    async def slow(inputs: dict[str, Any]) -> dspy.Prediction:
        nonlocal running, highest
        running += 1
        highest = max(highest, running)
        await asyncio.sleep(0.01)
        running -= 1
        return dspy.Prediction(answer="x")

    runs = new_runs(metrics, batch_parallelism=2)
    await batch(runs, FakeProgram(predict=slow), ["q"] * 7, receive)
    assert highest == 2


async def test_a_failed_batch_item_is_its_error_result_and_the_others_answer(
    metrics: Metrics, receive: Receive
) -> None:
    async def picky(inputs: dict[str, Any]) -> dspy.Prediction:
        if inputs["question"] == "bad":
            raise RuntimeError("no")
        return dspy.Prediction(answer="ok")

    runs = new_runs(metrics)
    results = await batch(runs, FakeProgram(predict=picky), ["good", "bad"], receive)
    assert results[0].outputs == Answer(answer="ok") and results[0].error is None
    assert results[1].outputs is None and results[1].error is not None
    assert results[1].error.code == "upstream_error"


async def test_a_batch_over_batch_max_items_is_refused_before_anything_runs(
    metrics: Metrics, receive: Receive
) -> None:
    program = FakeProgram(predict=hang())
    runs = new_runs(metrics, batch_max_items=2)
    with pytest.raises(RequestValidationError) as excinfo:
        await batch(runs, program, ["a", "b", "c"], receive)
    (error,) = excinfo.value.errors()
    assert (error["type"], error["loc"]) == ("too_long", ("body", "inputs"))
    assert runs.active == 0


async def test_a_batch_with_one_input_too_long_is_refused_whole_naming_its_index(
    metrics: Metrics, receive: Receive
) -> None:
    ran: list[str] = []

    async def record(inputs: dict[str, Any]) -> dspy.Prediction:
        ran.append(inputs["question"])
        return dspy.Prediction(answer="x")

    runs = new_runs(metrics, max_input_chars=4)
    with pytest.raises(RequestValidationError) as excinfo:
        await batch(runs, FakeProgram(predict=record), ["ok", "too long"], receive)
    assert excinfo.value.errors()[0]["loc"] == ("body", "inputs", 1, "question")
    assert ran == []


async def test_a_whole_batch_is_cancelled_when_its_client_disconnects(
    metrics: Metrics, receive: Receive
) -> None:
    runs = new_runs(metrics, batch_parallelism=2)
    program = FakeProgram(predict=hang())
    call = asyncio.ensure_future(batch(runs, program, ["a", "b", "c"], receive))
    await until(lambda: runs.active == 2)
    receive.leave()
    with pytest.raises(RunFailed) as excinfo:
        await asyncio.wait_for(call, 1.0)
    assert excinfo.value.failure.code == "disconnected"
    assert runs.active == 0
    assert count(metrics, "qa", "batch", "disconnected") == 1
