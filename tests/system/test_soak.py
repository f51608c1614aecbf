"""Soak: 1,000 streams with random disconnects and injected upstream failures.

Afterwards the service still answers, its asyncio tasks and the fake LM's open
upstream streams are back to their idle values, its memory grew by less than
MEMORY_BOUND_MB, and every stream that completed kept the token promise.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from dspy_forge.dev.devserver import RunningService, fake_lm_env, running_service
from dspy_forge.dev.fakelm.testing import FakeLM
from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec_text
from tests.system.test_robustness import debug_stats, wait_until

STREAMS = 1_000
CONCURRENCY = 100
MEMORY_BOUND_MB = 40  # RSS growth over the soak, after a warm-up; see docs/robustness.md

SPEC = """
version: 1
service: {name: soaked, title: Soaked}
lm: {model: openai/gpt-4o-mini}
programs:
  steady:
    module: Predict
    signature: "question -> answer"
    stream: [{field: answer}]
    status: {lm_start: Thinking...}
  broken:
    module: Predict
    signature: "question -> answer"
    lm: {model: openai/gpt-4o-mini}
    stream: [{field: answer}]
  refused:
    module: Predict
    signature: "question -> answer"
    lm: {model: openai/gpt-4o-mini}
    stream: [{field: answer}]
"""


def rss_mb(service: RunningService) -> float:
    status = Path(f"/proc/{service.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


async def one_stream(
    client: httpx.AsyncClient, program: str, index: int, leave_after: int | None
) -> str:
    """Run one stream; return how it ended: done, error, refused or left."""
    inputs = {"question": f"soak question {index}"}
    async with aconnect_sse(client, "POST", f"/v1/{program}/stream", json=inputs) as source:
        if source.response.status_code != 200:
            await source.response.aread()
            assert source.response.json()["error"]["code"]
            return "refused"
        events: list[tuple[str, Any]] = []
        async for sse in source.aiter_sse():
            events.append((sse.event, json.loads(sse.data)))
            if leave_after is not None and len(events) >= leave_after:
                return "left"
    kinds = [event for event, _ in events]
    if kinds[-1] == "error":
        assert "done" not in kinds
        return "error"
    assert kinds[-2:] == ["prediction", "done"], kinds
    chunks = "".join(data["chunk"] for event, data in events if event == "token")
    assert chunks == events[-2][1]["outputs"]["answer"]
    return "done"


def test_soak(tmp_path: Path, fake_lm: FakeLM) -> None:
    project = generate(load_spec_text(SPEC), tmp_path / "project")
    env = {
        **fake_lm_env(fake_lm.scenario_base("delay-2ms")),
        "BROKEN_LM_MODEL": "openai/fake-model",
        "BROKEN_LM_API_BASE": fake_lm.scenario_base("delay-2ms+break-after-8"),
        "BROKEN_LM_API_KEY": "fake",
        "REFUSED_LM_MODEL": "openai/fake-model",
        "REFUSED_LM_API_BASE": fake_lm.scenario_base("http-500"),
        "REFUSED_LM_API_KEY": "fake",
        "LM_NUM_RETRIES": "0",
        "DEBUG_STATS": "true",
        "MAX_CONCURRENT_RUNS": str(CONCURRENCY * 2),
    }
    rng = random.Random(8889)
    plan = [
        (
            rng.choices(["steady", "broken", "refused"], weights=[70, 15, 15])[0],
            rng.randint(1, 12) if rng.random() < 0.2 else None,
        )
        for _ in range(STREAMS)
    ]
    with (
        (tmp_path / "service.log").open("wb") as log,
        running_service(project, "soaked", env, log=log) as service,
    ):

        async def soak(runs: list[tuple[str, int | None]]) -> dict[str, int]:
            # Idle connections expire on the client first (uvicorn closes them after 5 s),
            # so that no request is sent on a connection the server is closing.
            limits = httpx.Limits(max_connections=CONCURRENCY, keepalive_expiry=1.0)
            gate = asyncio.Semaphore(CONCURRENCY)
            async with httpx.AsyncClient(base_url=service.url, limits=limits, timeout=60) as client:

                async def guarded(index: int, program: str, leave: int | None) -> str:
                    async with gate:
                        return await one_stream(client, program, index, leave)

                ends = await asyncio.gather(
                    *(guarded(i, program, leave) for i, (program, leave) in enumerate(runs))
                )
            return {end: ends.count(end) for end in set(ends)}

        asyncio.run(soak(plan[:50]))  # warm-up: imports, caches, connection pools
        assert wait_until(lambda: debug_stats(service)["active_runs"] == 0)
        idle_tasks = debug_stats(service)["tasks"]
        memory_before = rss_mb(service)

        outcomes = asyncio.run(soak(plan))

        assert outcomes["done"] > STREAMS * 0.5
        assert outcomes["error"] > 0 and outcomes["refused"] > 0 and outcomes["left"] > 0
        assert wait_until(lambda: debug_stats(service)["active_runs"] == 0)
        assert wait_until(lambda: fake_lm.stats()["streams_open"] == 0)
        assert wait_until(lambda: debug_stats(service)["tasks"] <= idle_tasks)
        assert httpx.get(f"{service.url}/healthz").status_code == 200
        assert asyncio.run(soak([("steady", None)])) == {"done": 1}
        growth = rss_mb(service) - memory_before
        print(f"soak: {outcomes}, RSS growth {growth:.1f} MB")
        assert growth < MEMORY_BOUND_MB


pytestmark = pytest.mark.soak
