"""status.py: StatusReporter fills the spec's templates from DSPy's callbacks."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import anyio
import dspy
import pytest
from dspy.utils.exceptions import LMAuthError
from forge_service.runtime.events import StatusEvent
from forge_service.runtime.program import ServedProgram
from forge_service.runtime.status import Status, StatusReporter

TEMPLATES = {
    "tool_start": "{program}: {tool}({args})",
    "tool_end": "{tool} gave {output}",
    "tool_error": "{tool} failed: {error}",
    "lm_start": "asking {model}",
    "lm_end": "{model} answered",
    "lm_error": "{model} failed: {error}",
    "module_start": "{module} starts",
    "module_end": "{module} ends",
}


class Tool:
    def __init__(self, name: str) -> None:
        self.name = name


class Model:
    model = "openai/fake"


@contextlib.contextmanager
def stream(size: int = 10) -> Iterator[list[Status]]:
    """A run's stream set as DSPy sets it; the list holds what was sent, after the block."""
    send, receive = anyio.create_memory_object_stream[Any](size)
    sent: list[Status] = []
    with dspy.context(send_stream=send):
        yield sent
    send.close()
    with receive:
        while True:
            try:
                sent.append(receive.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream):
                break


def reporter(templates: dict[str, str] | None = None, module: Any = None) -> StatusReporter:
    return StatusReporter("qa", module, TEMPLATES if templates is None else templates)


async def test_module_hooks_fire_for_the_programs_own_module_only() -> None:
    module = dspy.ChainOfThought("question -> answer")
    module.set_lm(dspy.utils.DummyLM([{"reasoning": "It is.", "answer": "Paris"}]))
    status = {"module_start": "{module} starts", "module_end": "{module} ends"}
    program = ServedProgram("qa", module, status=status)
    events = [item async for item in program.events({"question": "Capital?"})]
    statuses = [event for event in events if isinstance(event, StatusEvent)]
    assert [(s.hook, s.message) for s in statuses] == [
        ("module_start", "ChainOfThought starts"),
        ("module_end", "ChainOfThought ends"),
    ]
    assert statuses[0].call_id == statuses[1].call_id
    assert isinstance(events[-1], dspy.Prediction)


async def test_every_lm_call_gets_its_start_and_end_even_unlistened() -> None:
    module = dspy.Predict("question -> answer")
    module.set_lm(dspy.utils.DummyLM([{"answer": "Paris"}]))
    program = ServedProgram("qa", module, status={"lm_start": "asking {model}", "lm_end": "done"})
    events = [item async for item in program.events({"question": "Capital?"})]
    assert [(e.hook, e.message) for e in events if isinstance(e, StatusEvent)] == [
        ("lm_start", "asking dummy"),
        ("lm_end", "done"),
    ]


def test_tool_hooks_name_the_tool_and_show_its_args_and_output() -> None:
    status = reporter()
    with stream() as sent:
        status.on_tool_start("c1", Tool("search"), {"kwargs": {"query": "é"}})
        status.on_tool_end("c1", "x" * 500)
    start, end = sent
    assert (start.hook, start.tool, start.call_id) == ("tool_start", "search", "c1")
    assert start.message == 'qa: search({"query": "é"})'
    assert end.message == "search gave " + "x" * 200  # the output is cut at 200 characters


def test_a_tool_that_raises_ends_with_tool_error_naming_the_exception_and_logs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    status = reporter()
    with stream() as sent:
        status.on_tool_start("c1", Tool("search"), {"kwargs": {}})
        status.on_tool_end("c1", None, ValueError("secret detail"))
    assert [(s.hook, s.message) for s in sent[1:]] == [("tool_error", "search failed: ValueError")]
    assert all("secret detail" not in s.message for s in sent)
    (record,) = [r for r in caplog.records if "tool search failed" in r.getMessage()]
    assert record.levelno == logging.ERROR and record.exc_info is not None


def test_reacts_finish_tool_gets_no_status() -> None:
    status = reporter()
    with stream() as sent:
        status.on_tool_start("c1", Tool("finish"), {"kwargs": {}})
        status.on_tool_end("c1", "done")
    assert sent == []


def test_a_failed_lm_call_ends_with_lm_error_carrying_the_failures_code() -> None:
    status = reporter()
    with stream() as sent:
        status.on_lm_start("l1", Model(), {})
        status.on_lm_end("l1", None, LMAuthError("bad key sk-123"))
    assert [(s.hook, s.message) for s in sent] == [
        ("lm_start", "asking openai/fake"),
        ("lm_error", "openai/fake failed: upstream_auth"),
    ]


def test_module_hooks_skip_the_modules_the_program_is_built_of() -> None:
    top, inner = object(), object()
    status = reporter(module=top)
    with stream() as sent:
        status.on_module_start("m1", top, {})
        status.on_module_start("m2", inner, {})
        status.on_module_end("m2", None)
        status.on_module_end("m1", None)
    assert [(s.hook, s.call_id) for s in sent] == [("module_start", "m1"), ("module_end", "m1")]


def test_a_hook_without_a_template_sends_nothing() -> None:
    status = reporter({"lm_start": "asking {model}"})
    with stream() as sent:
        status.on_lm_start("l1", Model(), {})
        status.on_lm_end("l1", None)
        status.on_tool_start("c1", Tool("search"), {"kwargs": {}})
    assert [s.hook for s in sent] == ["lm_start"]


async def test_a_message_waits_behind_a_full_stream_rather_than_being_lost() -> None:
    status = reporter()
    send, receive = anyio.create_memory_object_stream[Any](0)
    with dspy.context(send_stream=send):
        status.on_lm_start("l1", Model(), {})  # nobody is reading: it is queued as a task
    with anyio.fail_after(1):
        message = await receive.receive()
    assert message.hook == "lm_start"
    send.close()
    receive.close()


def test_a_message_after_the_run_ended_is_dropped_quietly() -> None:
    status = reporter()
    send, receive = anyio.create_memory_object_stream[Any](5)
    receive.close()
    with dspy.context(send_stream=send):
        status.on_lm_start("l1", Model(), {})  # no exception
    send.close()


def test_the_stream_is_kept_from_the_first_callback_for_predictors_without_one() -> None:
    top = object()
    status = reporter(module=top)
    with stream() as sent:
        status.on_module_start("m1", top, {})
        with dspy.context(send_stream=None):  # DSPy runs an unlistened predictor so
            status.on_lm_start("l1", Model(), {})
            status.on_lm_end("l1", None)
    assert [s.hook for s in sent] == ["module_start", "lm_start", "lm_end"]


async def test_the_lm_call_metrics_ride_on_the_reporter_one_callback_for_dspy() -> None:
    """A streamed run's LM calls are timed through the reporter, not a callback of their own."""
    from forge_service.runtime.metrics import LMCallMetrics, Metrics

    seen: list[list[Any]] = []

    class Spy(dspy.Module):
        def __init__(self) -> None:
            super().__init__()
            self.predict = dspy.Predict("question -> answer")

        async def aforward(self, question: str) -> dspy.Prediction:
            seen.append(list(dspy.settings.callbacks))
            return await self.predict.acall(question=question)

    module = Spy()
    module.predict.set_lm(dspy.utils.DummyLM([{"answer": "Paris"}, {"answer": "Rome"}]))
    metrics = Metrics()
    program = ServedProgram("qa", module)
    for question in ("Capital of France?", "Capital of Italy?"):
        lm_calls = LMCallMetrics(metrics, "qa")
        [item async for item in program.events({"question": question}, lm_calls)]
    assert [type(callback).__name__ for callback in seen[0]] == ["StatusReporter"]
    timed = metrics.registry.get_sample_value(
        "dspy_lm_call_seconds_count", {"program": "qa", "model": "dummy"}
    )
    assert timed == 2
