"""End to end: each example spec generates a clean project that serves correct streams.

For every example: the project's own tests pass, and under uvicorn against the
fake LM server, 50 concurrent streams per program each get the spec's status
events, token chunks that concatenate to exactly the final value of each
listened output, one prediction, then done. (That the raw output is ruff-clean
is tests/golden/test_raw_output.py.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from dspy_forge.dev.devserver import fake_lm_env, running_service
from dspy_forge.dev.fakelm.testing import FakeLM
from dspy_forge.service.model import ProgramModel
from dspy_forge.spec.loader import load_spec
from tests.conftest import EXAMPLES, SPECS
from tests.projects import run_project_tests

CONCURRENCY = 50


def sample_inputs(program: ProgramModel) -> dict[str, Any]:
    return {field.name: field.type.sample for field in program.signature.inputs}


@pytest.mark.parametrize("name", EXAMPLES)
def test_generated_project_tests_pass(name: str, example_project: Callable[[str], Path]) -> None:
    run_project_tests(example_project(name))


async def read_stream(client: httpx.AsyncClient, path: str, inputs: dict[str, Any]) -> list[Any]:
    """(event, id, data) of each event; a keep-alive is no event (httpx-sse yields it empty)."""
    async with aconnect_sse(client, "POST", path, json=inputs) as source:
        assert source.response.status_code == 200
        run_id = source.response.headers["x-run-id"]
        events = [
            (sse.event, sse.id, json.loads(sse.data))
            async for sse in source.aiter_sse()
            if sse.data
        ]
    assert {event_id.rpartition("-")[0] for _, event_id, _ in events} == {run_id}
    assert {data["run_id"] for _, _, data in events} == {run_id}
    return events


def check_stream(program: ProgramModel, events: list[Any]) -> None:
    """The protocol and the spec's promises, for one completed stream."""
    kinds = [event for event, _, _ in events]
    positions = [int(event_id.rpartition("-")[2]) for _, event_id, _ in events]
    assert positions == list(range(1, len(positions) + 1))
    assert kinds[-2:] == ["prediction", "done"], kinds
    assert kinds.count("prediction") == 1
    assert "error" not in kinds
    outputs = events[-2][2]["outputs"]
    assert set(outputs) == {f.name for f in (*program.extra_outputs, *program.signature.outputs)}

    statuses = [data for event, _, data in events if event == "status"]
    for hook, template in program.status:
        said = [status for status in statuses if status["hook"] == hook]
        if template is None:
            assert not said, f"{hook} is silent in the spec"
        elif (hook.startswith("tool") and not program.tools) or hook.endswith("_error"):
            assert not said  # no tools to call, or nothing failed
        else:
            assert said, f"no {hook} status"
            if "{" not in template:
                assert {status["message"] for status in said} == {template}
    tokens = [data for event, _, data in events if event == "token"]
    for listener in program.listeners:
        chunks = [
            token["chunk"]
            for token in tokens
            if token["field"] == listener.field and token["predictor"] == listener.predictor
        ]
        assert chunks, f"no tokens for {listener.predictor}.{listener.field}"
        if listener.field in outputs:
            assert "".join(chunks) == outputs[listener.field]
    assert kinds.index("prediction") > max(
        (i for i, kind in enumerate(kinds) if kind == "token"), default=-1
    )


@pytest.mark.parametrize("name", EXAMPLES)
def test_served_streams_under_concurrency(
    name: str, example_project: Callable[[str], Path], fake_lm: FakeLM
) -> None:
    model = load_spec(SPECS / f"{name}.yaml").model
    project = example_project(name)
    own_lm = [program.name for program in model.programs if program.lm is not None]
    env = fake_lm_env(fake_lm.api_base, own_lm)
    with running_service(project, model.package, env) as service:

        async def run_all() -> None:
            limits = httpx.Limits(max_connections=CONCURRENCY * 2)
            timeout = httpx.Timeout(120)
            async with httpx.AsyncClient(
                base_url=service.url, limits=limits, timeout=timeout
            ) as client:
                for program in model.programs:
                    inputs = [
                        {**sample_inputs(program), **_vary(program, i)} for i in range(CONCURRENCY)
                    ]
                    results = await asyncio.gather(
                        *(read_stream(client, f"/v1/{program.name}/stream", x) for x in inputs)
                    )
                    for events in results:
                        check_stream(program, events)
                    response = await client.post(f"/v1/{program.name}", json=inputs[0])
                    assert response.status_code == 200, response.text

        asyncio.run(run_all())


def _vary(program: ProgramModel, index: int) -> dict[str, Any]:
    """Distinct str inputs per request, so no two requests share an answer."""
    first = next((f for f in program.signature.inputs if f.type.annotation == "str"), None)
    return {first.name: f"request {index}: what happened?"} if first else {}
