"""The HTTP surface: OpenAI wire format, failure switches and the stats endpoints."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import dspy
import httpx
import pytest
from dspy.utils.exceptions import (
    ContextWindowExceededError,
    LMAuthError,
    LMRateLimitError,
    LMServerError,
    LMTransportError,
)

from dspy_forge.dev.fakelm import FakeLM, main, running_fake_lm
from dspy_forge.dev.fakelm.server import split_tokens

MESSAGES = [
    {"role": "system", "content": "Your input fields are:\n1. `question` (str):\n"
     "Your output fields are:\n1. `answer` (str):\nAll interactions will be structured..."},
    {"role": "user", "content": "[[ ## question ## ]]\nHello?\n\nRespond with the corresponding "
     "output fields, starting with the field `[[ ## answer ## ]]`, and then ending with the "
     "marker for `[[ ## completed ## ]]`."},
]  # fmt: skip


def body(**extra: Any) -> dict[str, Any]:
    return {"model": "fake-model", "messages": MESSAGES, **extra}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def sse_events(response: httpx.Response) -> AsyncIterator[str]:
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            yield line[len("data: ") :]


def content_of(events: list[str]) -> str:
    chunks = [json.loads(e) for e in events if e != "[DONE]"]
    return "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])


async def wait_for(condition: Callable[[], Any], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_split_tokens_roundtrip() -> None:
    text = "[[ ## answer ## ]]\nHello  world.\n\n[[ ## completed ## ]]\n"
    assert "".join(split_tokens(text)) == text
    assert split_tokens("[[ ## answer ## ]]\nHi there") == [
        "[[", " ##", " answer", " ##", " ]]", "\nHi", " there"
    ]  # fmt: skip


async def test_models_and_completion_shape(fake_lm: FakeLM, client: httpx.AsyncClient) -> None:
    models = (await client.get(f"{fake_lm.api_base}/models")).json()
    assert models["data"][0]["id"] == "fake-model"

    response = await client.post(f"{fake_lm.api_base}/chat/completions", json=body(n=2))
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion"
    assert [c["finish_reason"] for c in data["choices"]] == ["stop", "stop"]
    content = data["choices"][0]["message"]["content"]
    assert content.startswith("[[ ## answer ## ]]\n") and content.endswith("[[ ## completed ## ]]")
    assert data["choices"][1]["message"]["content"] != content
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0

    limited = await client.post(f"{fake_lm.api_base}/chat/completions", json=body(max_tokens=3))
    assert limited.json()["choices"][0]["finish_reason"] == "length"


async def test_stream_shape_matches_the_completion(
    fake_lm: FakeLM, client: httpx.AsyncClient
) -> None:
    url = f"{fake_lm.api_base}/chat/completions"
    complete = (await client.post(url, json=body())).json()["choices"][0]["message"]["content"]
    request = body(stream=True, stream_options={"include_usage": True})
    async with client.stream("POST", url, json=request) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [event async for event in sse_events(response)]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 10
    assert content_of(events) == complete
    assert len(chunks) - 2 == len(split_tokens(complete))

    async with client.stream("POST", url, json=body(stream=True)) as response:
        events = [event async for event in sse_events(response)]
    assert "usage" not in json.loads(events[-2])


async def test_bad_requests(fake_lm: FakeLM, client: httpx.AsyncClient) -> None:
    url = f"{fake_lm.api_base}/chat/completions"
    assert (await client.post(url, content=b"{not json")).status_code == 400
    assert (await client.post(url, json={"model": "x"})).status_code == 400
    missing = await client.get(f"{fake_lm.url}/v2/nothing")
    assert missing.status_code == 404 and "error" in missing.json()
    unknown = await client.post(
        f"{fake_lm.scenario_base('http-5000')}/chat/completions", json=body()
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "unknown_scenario"


@pytest.mark.parametrize(
    ("scenario", "status", "code"),
    [
        ("http-401", 401, "invalid_api_key"),
        ("http-429", 429, "rate_limit_exceeded"),
        ("http-500", 500, None),
        ("http-503", 503, None),
        ("context-window", 400, "context_length_exceeded"),
    ],
)
async def test_http_errors(
    fake_lm: FakeLM, client: httpx.AsyncClient, scenario: str, status: int, code: str | None
) -> None:
    for stream in (False, True):
        url = f"{fake_lm.scenario_base(scenario)}/chat/completions"
        response = await client.post(url, json=body(stream=stream))
        assert response.status_code == status
        error = response.json()["error"]
        assert error["code"] == code and error["message"] and error["type"]
        assert ("retry-after" in response.headers) == (status in (429, 503))


@pytest.mark.parametrize(
    ("scenario", "error"),
    [
        ("http-401", LMAuthError),
        ("http-429", LMRateLimitError),
        ("http-500", LMServerError),
        ("context-window", ContextWindowExceededError),
        ("break-after-2", LMTransportError),
    ],
)
async def test_dspy_sees_typed_errors(fake_lm: FakeLM, scenario: str, error: type) -> None:
    with dspy.context(lm=fake_lm.lm(scenario, num_retries=0)), pytest.raises(error):
        await dspy.Predict("question -> answer").acall(question="fail?")


async def test_break_after_drops_the_connection(fake_lm: FakeLM, client: httpx.AsyncClient) -> None:
    scenario = "break-after-3"
    url = f"{fake_lm.scenario_base(scenario)}/chat/completions"
    events: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        async with client.stream("POST", url, json=body(stream=True)) as response:
            async for event in sse_events(response):
                events.append(event)
    assert len(events) == 3 and "[DONE]" not in events
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(url, json=body())
    stats = (await fake_lm.astats())["scenarios"][scenario]
    assert stats["connections_aborted"] == 2 and stats["streams_completed"] == 0


async def test_stall_after_keeps_the_connection_until_the_client_leaves(fake_lm: FakeLM) -> None:
    scenario = "stall-after-2"
    url = f"{fake_lm.scenario_base(scenario)}/chat/completions"
    events: list[str] = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=0.4)) as client:
        with pytest.raises(httpx.ReadTimeout):
            async with client.stream("POST", url, json=body(stream=True)) as response:
                async for event in sse_events(response):
                    events.append(event)
        assert len(events) == 2
        with pytest.raises(httpx.ReadTimeout):
            await client.post(url, json=body())

    def counters() -> dict[str, int]:
        return fake_lm.stats()["scenarios"][scenario]

    await wait_for(lambda: counters()["streams_disconnected"] == 1)
    await wait_for(lambda: counters()["completions_disconnected"] == 1)
    assert counters()["streams_open"] == 0


async def test_delay_and_first_token_pauses(fake_lm: FakeLM, client: httpx.AsyncClient) -> None:
    url = f"{fake_lm.scenario_base('first-300ms+delay-40ms+words-4')}/chat/completions"
    started = time.perf_counter()
    arrivals: list[float] = []
    async with client.stream("POST", url, json=body(stream=True)) as response:
        async for event in sse_events(response):
            if event != "[DONE]" and json.loads(event)["choices"][0]["delta"].get("content"):
                arrivals.append(time.perf_counter() - started)
    assert arrivals[0] >= 0.29
    gaps = sorted(b - a for a, b in itertools.pairwise(arrivals))
    assert len(gaps) >= 10 and gaps[len(gaps) // 2] >= 0.03
    assert arrivals[-1] - arrivals[0] >= 0.04 * len(gaps) * 0.95


async def test_client_closing_early_counts_as_disconnected(fake_lm: FakeLM) -> None:
    scenario = "delay-20ms+words-200"
    url = f"{fake_lm.scenario_base(scenario)}/chat/completions"
    async with httpx.AsyncClient(timeout=10) as client:
        async with client.stream("POST", url, json=body(stream=True)) as response:
            received = 0
            async for _ in sse_events(response):
                received += 1
                if received == 3:
                    break
        open_now = (await fake_lm.astats())["scenarios"][scenario]
    assert open_now["streams_started"] == 1

    def counters() -> dict[str, int]:
        return fake_lm.stats()["scenarios"][scenario]

    await wait_for(lambda: counters()["streams_disconnected"] == 1)
    final = counters()
    assert final["streams_open"] == 0 and final["streams_completed"] == 0
    assert 3 <= final["chunks_sent"] < 50


async def test_stats_count_and_reset(fake_lm: FakeLM, client: httpx.AsyncClient) -> None:
    scenario = "words-2"
    url = f"{fake_lm.scenario_base(scenario)}/chat/completions"
    await client.post(url, json=body())
    async with client.stream("POST", url, json=body(stream=True)) as response:
        events = [event async for event in sse_events(response)]
    counters = (await fake_lm.astats())["scenarios"][scenario]
    assert counters["requests"] == 2 and counters["completions"] == 1
    assert counters["streams_started"] == counters["streams_completed"] == 1
    assert counters["chunks_sent"] == len(events) - 2
    await fake_lm.areset()
    stats = await fake_lm.astats()
    assert stats["requests"] == 0 and stats["scenarios"][scenario]["requests"] == 0


def test_server_wide_default_scenario() -> None:
    with running_fake_lm(scenario="words-3") as fake:
        with dspy.context(lm=fake.lm()):
            answer = dspy.Predict("question -> answer")(question="Default?").answer
        assert len(answer.split()) == 3
        assert fake.stats()["scenarios"]["default"]["requests"] == 1


def test_main_rejects_an_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--scenario", "slow"]) == 2
    assert "unknown fake LM scenario switch" in capsys.readouterr().err


async def test_streams_open_peak_counts_overlapping_streams(
    fake_lm: FakeLM, client: httpx.AsyncClient
) -> None:
    scenario = "delay-30ms+words-8"
    url = f"{fake_lm.scenario_base(scenario)}/chat/completions"
    await fake_lm.areset()

    async def one() -> None:
        async with client.stream("POST", url, json=body(stream=True)) as response:
            async for _ in sse_events(response):
                pass

    await asyncio.gather(*(one() for _ in range(3)))
    stats = await fake_lm.astats()
    assert stats["streams_open"] == 0
    assert stats["streams_open_peak"] == stats["scenarios"][scenario]["streams_open_peak"] == 3
    await fake_lm.areset()
    assert (await fake_lm.astats())["streams_open_peak"] == 0
