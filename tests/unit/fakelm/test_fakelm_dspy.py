"""Real DSPy programs on the native engine against the real fake LM server."""

from __future__ import annotations

from typing import Any, Literal

import dspy
import pydantic
import pytest
from dspy.clients.backend_selection import select_backend
from dspy.streaming import StreamListener, StreamResponse

from dspy_forge.dev.fakelm import FakeLM


class Address(pydantic.BaseModel):
    city: str
    zip_code: int


class Profile(dspy.Signature):
    """Describe a person."""

    name: str = dspy.InputField()
    summary: str = dspy.OutputField()
    age: int = dspy.OutputField()
    height: float = dspy.OutputField()
    active: bool = dspy.OutputField()
    hobbies: list[str] = dspy.OutputField()
    scores: dict[str, int] = dspy.OutputField()
    status: Literal["new", "returning"] = dspy.OutputField()
    nickname: str | None = dspy.OutputField()
    address: Address = dspy.OutputField()


@pytest.fixture
def lm(fake_lm: FakeLM) -> dspy.LM:
    lm = dspy.LM("openai/fake-model", api_base=fake_lm.api_base, api_key="fake", cache=False)
    assert select_backend(lm).native
    return lm


def assert_profile(prediction: dspy.Prediction) -> None:
    assert len(prediction.summary.split()) == 20
    assert isinstance(prediction.age, int)
    assert isinstance(prediction.height, float)
    assert isinstance(prediction.active, bool)
    assert prediction.hobbies and all(isinstance(h, str) for h in prediction.hobbies)
    assert prediction.scores and all(isinstance(v, int) for v in prediction.scores.values())
    assert prediction.status == "new"
    assert isinstance(prediction.nickname, str)
    assert isinstance(prediction.address, Address)


@pytest.mark.parametrize("module", [dspy.Predict, dspy.ChainOfThought])
async def test_typed_outputs_parse(lm: dspy.LM, module: Any) -> None:
    with dspy.context(lm=lm):
        prediction = await module(Profile).acall(name="Ada")
    assert_profile(prediction)
    if module is dspy.ChainOfThought:
        assert len(prediction.reasoning.split()) == 20


async def test_json_adapter_outputs_parse(lm: dspy.LM) -> None:
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        prediction = await dspy.Predict(Profile).acall(name="Ada")
    assert_profile(prediction)


def test_sync_call_and_determinism(lm: dspy.LM) -> None:
    predict = dspy.Predict("question -> answer")
    with dspy.context(lm=lm):
        first = predict(question="What is DSPy?").answer
        again = predict(question="What is DSPy?").answer
        other = predict(question="What is FastAPI?").answer
    assert first == again != other


async def test_react_calls_an_async_tool_then_finishes(lm: dspy.LM, fake_lm: FakeLM) -> None:
    calls: list[tuple[str, int]] = []

    async def weather(city: str, days: int) -> str:
        """Forecast for a city."""
        calls.append((city, days))
        return f"Sunny in {city} for {days} days."

    agent = dspy.ReAct("question -> answer: str", tools=[weather])
    with dspy.context(lm=lm):
        prediction = await agent.acall(question="Weather in Paris?")
    assert len(calls) == 1 and isinstance(calls[0][0], str) and isinstance(calls[0][1], int)
    trajectory = prediction.trajectory
    assert trajectory["tool_name_0"] == "weather"
    assert trajectory["observation_0"].startswith("Sunny in")
    assert trajectory["tool_name_1"] == "finish"
    assert isinstance(prediction.answer, str) and prediction.answer

    calls.clear()
    two_steps = dspy.LM(
        "openai/fake-model", api_base=fake_lm.scenario_base("steps-2"), api_key="fake", cache=False
    )
    with dspy.context(lm=two_steps):
        prediction = await agent.acall(question="Weather in Rome?")
    assert len(calls) == 2
    assert prediction.trajectory["tool_name_2"] == "finish"


@pytest.mark.parametrize("module", [dspy.Predict, dspy.ChainOfThought])
async def test_streamify_chunks_concatenate_to_the_final_value(lm: dspy.LM, module: Any) -> None:
    program = dspy.streamify(
        module("question -> answer, confidence: float"),
        stream_listeners=[StreamListener(signature_field_name="answer")],
        is_async_program=True,
    )
    chunks: list[str] = []
    final: dspy.Prediction | None = None
    with dspy.context(lm=lm):
        async for item in program(question="Stream me an answer"):
            if isinstance(item, StreamResponse):
                assert item.signature_field_name == "answer"
                chunks.append(item.chunk)
            elif isinstance(item, dspy.Prediction):
                final = item
    assert final is not None
    assert len([c for c in chunks if c]) >= 10
    assert "".join(chunks) == final.answer
    assert isinstance(final.confidence, float)


def test_fake_lm_helper_builds_a_native_lm(fake_lm: FakeLM) -> None:
    lm = fake_lm.lm("words-4")
    assert select_backend(lm).native
    with dspy.context(lm=lm):
        answer = dspy.Predict("question -> answer")(question="short?").answer
    assert len(answer.split()) == 4
