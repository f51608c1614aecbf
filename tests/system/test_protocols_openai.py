"""OpenAI Chat Completions through its real clients: the ``openai`` SDK and LiteLLM.

A generated service under uvicorn on the fake LM, reached as
``base_url=<service>/openai/v1`` with each program's name as the model: the
streamed text equals the final field, reasoning goes to ``reasoning_content``,
errors are the SDK's own typed exceptions, the API key is enforced, and a
client that closes its stream stops the upstream LM request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from dspy_forge.dev.devserver import RunningService
from dspy_forge.dev.fakelm.testing import FakeLM
from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec_text

from .chat_service import KEY, project, serving
from .serving import debug_stats, served, wait_until

__all__ = ["project"]  # the fixture, shared with the AI SDK's tests

ASK = [{"role": "user", "content": "What is the meaning of life?"}]


@pytest.fixture(scope="module")
def service(
    project: Path, fake_lm: FakeLM, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    start = serving(project, fake_lm, tmp_path_factory.mktemp("logs"))
    with start() as running:
        yield running


@pytest.fixture
def start(project: Path, fake_lm: FakeLM, tmp_path: Path) -> Callable[..., Any]:
    return serving(project, fake_lm, tmp_path)


def client(service: RunningService, key: str = "unused", **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{service.url}/openai/v1", api_key=key, max_retries=0, **options)


def streamed(chunks: Any) -> tuple[str, str, dict[str, Any]]:
    """The content and reasoning deltas of a stream, joined, and the last chunk's extra field."""
    content, reasoning, extra = [], [], {}
    for chunk in chunks:
        for choice in chunk.choices:
            content.append(choice.delta.content or "")
            reasoning.append((choice.delta.model_extra or {}).get("reasoning_content") or "")
        extra = (chunk.model_extra or {}).get("dspy") or extra
    return "".join(content), "".join(reasoning), extra


def test_models_are_the_programs(service: RunningService) -> None:
    sdk = client(service)
    assert sorted(model.id for model in sdk.models.list()) == [
        "agent",
        "convo",
        "qa",
        "quiet",
        "thinker",
    ]
    assert sdk.models.retrieve("qa").owned_by == "dspy-forge"
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.models.retrieve("nope")
    assert caught.value.code == "model_not_found"


def test_a_completion_carries_the_content_field_reasoning_and_every_output(
    service: RunningService,
) -> None:
    completion = client(service).chat.completions.create(model="thinker", messages=ASK)
    outputs = completion.model_extra["dspy"]["outputs"]
    message = completion.choices[0].message
    assert message.content == outputs["answer"] and message.content
    assert message.model_extra["reasoning_content"] == outputs["reasoning"]
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0


@pytest.mark.parametrize("model", ["qa", "thinker", "agent", "quiet"])
def test_streamed_text_equals_the_final_field(service: RunningService, model: str) -> None:
    messages = ASK
    extra_body = {"inputs": {"tone": "dry"}} if model == "quiet" else None
    stream = client(service).chat.completions.create(
        model=model, messages=messages, stream=True, extra_body=extra_body
    )
    content, reasoning, extra = streamed(stream)
    outputs = extra["outputs"]
    assert content and content == outputs["answer"]
    assert len(extra["run_id"]) == 32
    if model == "thinker":  # its reasoning is listened to: reasoning_content deltas
        assert reasoning == outputs["reasoning"]
    if model == "quiet":  # nothing streamed: the whole answer arrives with the prediction
        assert set(outputs) == {"answer", "confidence"}


def test_async_stream_fills_the_history_from_earlier_messages(
    service: RunningService, fake_lm: FakeLM
) -> None:
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Who wrote Hamlet?"},
        {"role": "assistant", "content": "Shakespeare wrote it."},
        {"role": "user", "content": "When was he born?"},
    ]

    async def chat() -> tuple[str, str, dict[str, Any]]:
        sdk = openai.AsyncOpenAI(
            base_url=f"{service.url}/openai/v1", api_key="unused", max_retries=0
        )
        async with sdk:
            stream = await sdk.chat.completions.create(
                model="convo", messages=conversation, stream=True
            )
            chunks = [chunk async for chunk in stream]
        return streamed(chunks)

    fake_lm.reset()
    content, _, extra = asyncio.run(chat())
    assert content == extra["outputs"]["answer"]
    (prompt,) = fake_lm.prompts()
    assert "Who wrote Hamlet?" in prompt and "Shakespeare wrote it." in prompt
    assert "When was he born?" in prompt


def test_bad_requests_are_typed_errors(service: RunningService) -> None:
    sdk = client(service)
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.chat.completions.create(model="nope", messages=ASK)
    assert (caught.value.code, caught.value.param) == ("model_not_found", "model")
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="qa", messages=[{"role": "system", "content": "Hi"}])
    assert caught.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="qa", messages=[])
    assert caught.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as caught:  # quiet needs its tone input
        sdk.chat.completions.create(model="quiet", messages=ASK, stream=True)
    assert caught.value.param == "inputs.tone"
    body = httpx.post(f"{service.url}/openai/v1/chat/completions", json={"model": "qa"})
    assert body.status_code == 400
    assert body.json()["error"]["type"] == "invalid_request_error"


def test_an_upstream_failure_before_the_first_chunk_is_the_sdks_typed_error(
    start: Callable[..., Any],
) -> None:
    with start("http-429") as service:
        sdk = client(service)
        with pytest.raises(openai.RateLimitError) as caught:
            sdk.chat.completions.create(model="qa", messages=ASK, stream=True)
        assert caught.value.code == "rate_limited"
        assert caught.value.body["type"] == "rate_limit_error"
        with pytest.raises(openai.RateLimitError):
            sdk.chat.completions.create(model="qa", messages=ASK)


def test_a_failure_mid_stream_is_an_error_frame_the_sdk_raises(
    start: Callable[..., Any],
) -> None:
    with start("words-100+break-after-40") as service:
        stream = client(service).chat.completions.create(model="qa", messages=ASK, stream=True)
        received = []
        with pytest.raises(openai.APIError) as caught:
            for chunk in stream:
                received.extend(choice.delta.content or "" for choice in chunk.choices)
        assert "".join(received)  # some text came before the failure
        assert caught.value.code == "upstream_unavailable"


def test_the_api_key_is_enforced(start: Callable[..., Any]) -> None:
    with start(API_KEYS=KEY) as service:
        with pytest.raises(openai.AuthenticationError):
            client(service, "wrong").chat.completions.create(model="qa", messages=ASK)
        with pytest.raises(openai.AuthenticationError):
            client(service, "wrong").models.list()
        completion = client(service, KEY).chat.completions.create(model="qa", messages=ASK)
        assert completion.choices[0].message.content


def test_a_client_that_closes_the_stream_stops_the_upstream_lm_request(
    start: Callable[..., Any], fake_lm: FakeLM
) -> None:
    with start("delay-100ms+words-200", RUN_GRACE="30") as service:
        before = fake_lm.stats()["streams_disconnected"]
        stream = client(service).chat.completions.create(model="qa", messages=ASK, stream=True)
        for chunk in stream:
            if any(choice.delta.content for choice in chunk.choices):
                break
        stream.close()
        # No resume in this protocol: the run stops now, not after RUN_GRACE.
        assert wait_until(lambda: fake_lm.stats()["streams_disconnected"] == before + 1)
        assert wait_until(lambda: fake_lm.stats()["streams_open"] == 0)
        assert wait_until(lambda: debug_stats(service)["active_runs"] == 0)


def test_litellm_as_a_client_streams_and_completes(service: RunningService) -> None:
    import litellm

    base = f"{service.url}/openai/v1"
    reply = litellm.completion(model="openai/qa", api_base=base, api_key="unused", messages=ASK)
    assert reply.choices[0].message.content
    chunks = litellm.completion(
        model="openai/thinker", api_base=base, api_key="unused", messages=ASK, stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    again = client(service).chat.completions.create(model="thinker", messages=ASK)
    assert text and len(text.split()) == len(again.choices[0].message.content.split())


def test_the_environment_turns_the_protocol_off(start: Callable[..., Any]) -> None:
    with start(PROTOCOL_OPENAI="false") as service:
        assert httpx.get(f"{service.url}/openai/v1/models").status_code == 404
        (program, *_) = httpx.get(f"{service.url}/v1/programs").json()
        assert "openai" not in program["protocols"] and "ai_sdk" in program["protocols"]


def test_the_spec_turns_every_protocol_off_and_the_environment_back_on(
    fake_lm: FakeLM, tmp_path: Path
) -> None:
    spec = (
        "version: 1\nservice: {name: closed}\nlm: {model: openai/gpt-4o-mini}\n"
        "server: {protocols: {openai: false, ai_sdk: false, mcp: false, agui: false}}\n"
        'programs:\n  qa: {module: Predict, signature: "question -> answer"}\n'
    )
    project = generate(load_spec_text(spec), tmp_path / "closed")
    with served(project, "closed", fake_lm, tmp_path / "off.log") as service:
        assert httpx.get(f"{service.url}/openai/v1/models").status_code == 404
        assert httpx.post(f"{service.url}/ai-sdk/qa", json={}).status_code == 404
        assert httpx.get(f"{service.url}/v1/programs").json()[0]["protocols"] == {}
    env = {"PROTOCOL_OPENAI": "true"}
    with served(project, "closed", fake_lm, tmp_path / "on.log", env=env) as service:
        reply = client(service).chat.completions.create(model="qa", messages=ASK)
        assert reply.choices[0].message.content


def test_the_catalog_lists_each_programs_urls(service: RunningService) -> None:
    programs = {p["name"]: p for p in httpx.get(f"{service.url}/v1/programs").json()}
    assert programs["qa"]["protocols"] == {
        "openai": "/openai/v1/chat/completions",
        "ai_sdk": "/ai-sdk/qa",
        "mcp": "/mcp",
        "agui": "/agui/qa",
    }
