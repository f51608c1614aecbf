"""The LM's connection pool: set on DSPy's native engine, never by moving to LiteLLM.

The first tests pin the DSPy internals ``runtime/lm_pool.py`` relies on; when one fails, DSPy
changed under it: read that module's docstring and adapt it (or drop it for a setting DSPy grew).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
from collections.abc import Iterator
from typing import Any

import dspy
import pytest
from dspy.clients import execution
from dspy.clients.backend_selection import select_backend
from dspy.clients.engines.lm15_engine import AsyncLM15Engine, LM15Engine
from dspy.lm15 import RouterConfig
from dspy.streaming import StreamListener
from forge_service.runtime import lm_pool
from forge_service.runtime.lm import LMConfig, LMOverrides, build_lm
from forge_service.runtime.lm_pool import PooledEngines, set_max_connections

from dspy_forge.dev.fakelm import FakeLM, running_fake_lm

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

CONFIG = LMConfig(model="openai/fake-model")


@pytest.fixture(scope="module")
def fake_lm() -> Iterator[FakeLM]:
    with running_fake_lm() as fake:
        yield fake


# --- The DSPy internals relied on ------------------------------------------------------------


def test_written_for_this_dspy() -> None:
    assert dspy.__version__.startswith(lm_pool.DSPY_VERSION + ".")
    from dspy._vendor.lm15.transports import DEFAULT_MAX_CONNECTIONS

    assert DEFAULT_MAX_CONNECTIONS == lm_pool.DEFAULT_MAX_CONNECTIONS


def test_dspy_builds_native_engines_into_the_lms_store_without_a_pool_size() -> None:
    source = inspect.getsource(execution._select_engine)
    assert "lm._engine_store.get(key)" in source
    # The engine stored is the one DSPy then calls (so lm_pool initializes it again in place).
    assert "lm._engine_store[key] = backend" in source
    assert "return backend, canonical, resolution.provider" in source
    assert "backend = cls(config, model_type=lm.model_type)" in source
    # If DSPy passes max_connections itself one day, use that instead of lm_pool.
    assert "max_connections" not in source
    lm = dspy.LM("openai/x", api_key="k", api_base="http://127.0.0.1:9/v1")
    assert type(lm._engine_store) is dict and not lm._engine_store
    assert lm.copy(temperature=1.0)._engine_store is lm._engine_store


def test_lm15_engines_take_a_router_config_with_max_connections() -> None:
    assert "max_connections" in {field.name for field in dataclasses.fields(RouterConfig)}
    for cls in (LM15Engine, AsyncLM15Engine):
        engine = cls(RouterConfig(max_connections=7), model_type="chat")
        assert engine.config.max_connections == 7 and engine.model_type == "chat"
        assert engine.router.config.transport_kwargs() == {"max_connections": 7}


# --- What the service builds -----------------------------------------------------------------


def overrides(fake: FakeLM, scenario: str = "words-3", **changes: Any) -> LMOverrides:
    return LMOverrides(api_base=fake.scenario_base(scenario), api_key="fake", **changes)


def test_dspys_default_leaves_the_lm_untouched(fake_lm: FakeLM) -> None:
    lm = build_lm(CONFIG, overrides(fake_lm, max_connections=100))
    assert type(lm._engine_store) is dict
    assert select_backend(lm).native


async def test_the_lm_keeps_the_native_engine_with_its_pool_size(fake_lm: FakeLM) -> None:
    lm = build_lm(CONFIG, overrides(fake_lm, max_connections=1000, timeout=30.0))
    assert isinstance(lm._engine_store, PooledEngines)
    assert select_backend(lm).native
    with dspy.context(lm=lm):
        await dspy.Predict("question -> answer").acall(question="Pool?")
    (engine,) = lm._engine_store.values()
    assert type(engine) is AsyncLM15Engine
    assert engine.config.max_connections == 1000
    assert engine.router._transport.max_connections == 1000
    assert engine.config.base_urls and engine.config.timeouts is not None  # DSPy's own config


def test_a_second_call_on_the_lm_is_refused_a_pool_size(fake_lm: FakeLM) -> None:
    lm = build_lm(CONFIG, overrides(fake_lm, max_connections=10))
    with pytest.raises(RuntimeError, match="no empty _engine_store"):
        set_max_connections(lm, 20)
    with pytest.raises(ValueError, match="positive"):
        set_max_connections(dspy.LM("openai/x"), 0)


async def streams_peak(fake: FakeLM, max_connections: int, streams: int) -> int:
    """The most of ``streams`` concurrent streamed runs open at the fake LM at once."""
    scenario = "delay-60ms+words-10"
    lm = build_lm(CONFIG, overrides(fake, scenario, max_connections=max_connections))
    program = dspy.streamify(
        dspy.Predict("question -> answer"),
        stream_listeners=[StreamListener(signature_field_name="answer")],
        is_async_program=True,
    )

    async def one(index: int) -> None:
        with dspy.context(lm=lm):
            async for _ in program(question=f"Question {index}?"):
                pass

    await fake.areset()
    await asyncio.gather(*(one(index) for index in range(streams)))
    counters = (await fake.astats())["scenarios"][scenario]
    assert counters["streams_completed"] == streams
    return int(counters["streams_open_peak"])


async def test_the_pool_size_caps_the_streams_in_flight(fake_lm: FakeLM) -> None:
    assert await streams_peak(fake_lm, max_connections=2, streams=6) <= 2
    assert await streams_peak(fake_lm, max_connections=6, streams=6) > 2
