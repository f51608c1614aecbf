"""The generated typed client against a served project on the fake LM, sync and async.

Every method (call, stream, batch) with an API key and a request id; the
service's errors raised as their typed exceptions (a wrong key, an input too
long, the LM failing, an unknown run); a cancel that closes the LM's stream;
and a stream whose connection a proxy cuts, which the client resumes on its
own: one run, every event once and in order, one LM request.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pydantic
import pytest

from dspy_forge.dev.devserver import RunningService
from dspy_forge.dev.fakelm.testing import FakeLM
from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec_text

from .servers import CuttingProxy
from .serving import served, wait_until

SPEC = """
version: 1
service: {name: clientele, title: Clientele}
lm: {model: openai/gpt-4o-mini, api_key_env: OPENAI_API_KEY}
programs:
  qa:
    module: Predict
    signature: "question, config: str | None -> answer"
    stream: [{field: answer}]
"""
PACKAGE = "clientele"
KEY = "the-right-key"
MAX_CHARS = 300
BASE_ENV = {"LM_NUM_RETRIES": "0", "DEBUG_STATS": "true", "LOG_LEVEL": "WARNING"}
SLOW = "delay-50ms+words-40"  # a 2 s stream: time to cancel or cut it midway


def question() -> str:
    """A question never asked before, in any process or earlier run, so that neither DSPy's
    cache nor another test's request to the shared fake LM is counted as its own."""
    return f"Question {uuid.uuid4().hex}: why?"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(load_spec_text(SPEC), tmp_path_factory.mktemp("clientele") / "project")


@pytest.fixture(scope="module")
def client(project: Path) -> Iterator[ModuleType]:
    """The project's ``clientele.client`` module."""
    sys.path.insert(0, str(project / "src"))
    try:
        yield importlib.import_module(f"{PACKAGE}.client")
    finally:
        sys.path.remove(str(project / "src"))


def _serve(project: Path, fake_lm: FakeLM, folder: Path, scenario: str | None, **env: str) -> Any:
    return served(
        project,
        PACKAGE,
        fake_lm,
        folder / "service.log",
        scenario=scenario,
        env={**BASE_ENV, **env},
    )


@pytest.fixture(scope="module")
def keyed(
    project: Path, fake_lm: FakeLM, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    """The service with API keys on and inputs capped at MAX_CHARS characters."""
    folder = tmp_path_factory.mktemp("keyed")
    with _serve(project, fake_lm, folder, None, API_KEYS=KEY, MAX_INPUT_CHARS=str(MAX_CHARS)) as s:
        yield s


@pytest.fixture(scope="module")
def failing(
    project: Path, fake_lm: FakeLM, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    """The service on an LM that answers every request with HTTP 500."""
    with _serve(project, fake_lm, tmp_path_factory.mktemp("failing"), "http-500") as service:
        yield service


@pytest.fixture(scope="module")
def slow(
    project: Path, fake_lm: FakeLM, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    """The service on an LM that streams 40 words, one every 50 ms."""
    with _serve(project, fake_lm, tmp_path_factory.mktemp("slow"), SLOW) as service:
        yield service


def check_one_run(client: ModuleType, events: list[Any]) -> str:
    """Assert the events are one whole run, each position once, in order; its streamed text."""
    assert events and isinstance(events[-1], client.Done), events[-1:]
    assert len({event.run_id for event in events}) == 1
    assert [event.position for event in events] == list(range(1, len(events) + 1))
    (prediction,) = [event for event in events if isinstance(event, client.Prediction)]
    assert events[-2] is prediction
    assert isinstance(prediction.outputs, client.QaResponse)
    streamed = "".join(event.chunk for event in events if isinstance(event, client.Token))
    assert streamed and streamed == prediction.outputs.answer  # the token promise
    return streamed


def lm_requests_for(fake_lm: FakeLM, asked: str) -> int:
    return sum(asked in prompt for prompt in fake_lm.prompts())


# --- Every method, sync and async ---------------------------------------------------


def test_call_stream_and_batch_return_typed_outputs(
    client: ModuleType, keyed: RunningService
) -> None:
    with client.Client(keyed.url, api_key=KEY) as qa_client:
        answer = qa_client.qa(question=question(), config="terse")
        assert isinstance(answer, client.QaResponse) and answer.answer
        with qa_client.qa.stream(question=question()) as stream:
            events = list(stream)
        check_one_run(client, events)
        assert stream.run_id == events[0].run_id
        stream = qa_client.qa.stream(question=question())
        assert len([stream.close() for _ in stream]) == 1  # closed inside the loop: it ends
        results = qa_client.qa.batch(
            [client.QaRequest(question=question()), client.QaRequest(question=question())]
        )
        assert [type(result) for result in results] == [client.QaResponse] * 2


def test_the_async_client_calls_streams_and_batches(
    client: ModuleType, keyed: RunningService
) -> None:
    async def use() -> tuple[Any, list[Any], list[Any]]:
        async with client.AsyncClient(keyed.url, api_key=KEY) as qa_client:
            answer = await qa_client.qa(question=question())
            events = [event async for event in qa_client.qa.stream(question=question())]
            batch = await qa_client.qa.batch([client.QaRequest(question=question(), config="x")])
            return answer, events, batch

    answer, events, batch = asyncio.run(use())
    assert isinstance(answer, client.QaResponse) and answer.answer
    check_one_run(client, events)
    assert len(batch) == 1 and isinstance(batch[0], client.QaResponse)


def test_the_request_id_is_sent_and_echoed_by_events_and_errors(
    client: ModuleType, keyed: RunningService
) -> None:
    with client.Client(keyed.url, api_key=KEY) as qa_client:
        tagged = qa_client.with_options(request_id="client-id-1")
        with tagged.qa.stream(question=question()) as stream:
            events = list(stream)
        assert stream.request_id == "client-id-1"
        assert {event.request_id for event in events} == {"client-id-1"}
        with pytest.raises(client.ValidationFailed) as refused:
            qa_client.with_options(request_id="client-id-2").qa(question="?" * (MAX_CHARS + 1))
        assert refused.value.request_id == "client-id-2"
        with pytest.raises(ValueError, match="request id"):
            qa_client.with_options(request_id="not one the service keeps")
        plain = qa_client.qa.stream(question=question())  # the original sends none: a new id
        assert {event.request_id for event in plain} - {"client-id-1", "client-id-2", None}

    async def tagged_async() -> set[str]:
        async with client.AsyncClient(keyed.url, api_key=KEY) as qa_client:
            stream = qa_client.with_options(request_id="client-id-3").qa.stream(question=question())
            return {event.request_id async for event in stream}

    assert asyncio.run(tagged_async()) == {"client-id-3"}


# --- Errors as typed exceptions -------------------------------------------------------


def test_a_wrong_or_missing_api_key_raises_unauthorized(
    client: ModuleType, keyed: RunningService
) -> None:
    for key in ("the-wrong-key", None):
        with client.Client(keyed.url, api_key=key) as qa_client:
            with pytest.raises(client.Unauthorized) as refused:
                qa_client.qa(question=question())
            assert refused.value.status == 401 and refused.value.code == "unauthorized"
            with pytest.raises(client.Unauthorized):
                list(qa_client.qa.stream(question=question()))
            with pytest.raises(client.Unauthorized):
                qa_client.qa.batch([client.QaRequest(question=question())])

    async def wrong_key() -> None:
        async with client.AsyncClient(keyed.url, api_key="the-wrong-key") as qa_client:
            await qa_client.qa(question=question())

    with pytest.raises(client.Unauthorized):
        asyncio.run(wrong_key())


def test_an_input_too_long_raises_validation_failed_naming_the_field(
    client: ModuleType, keyed: RunningService
) -> None:
    long = "x" * (MAX_CHARS + 1)
    with client.Client(keyed.url, api_key=KEY) as qa_client:
        with pytest.raises(client.ValidationFailed) as refused:
            qa_client.qa(question=long)
        error = refused.value
        assert (error.status, error.code) == (422, "invalid_input")
        assert [field["loc"] for field in error.fields] == [["body", "question"]]
        assert error.request_id
        with pytest.raises(client.ValidationFailed), qa_client.qa.stream(question=long):
            pass
        with pytest.raises(client.ValidationFailed) as refused:
            qa_client.qa.batch([client.QaRequest(question="ok"), client.QaRequest(question=long)])
        assert refused.value.fields[0]["loc"] == ["body", "inputs", 1, "question"]

    async def too_long() -> None:
        async with (
            client.AsyncClient(keyed.url, api_key=KEY) as qa_client,
            qa_client.qa.stream(question=long),
        ):
            pass

    with pytest.raises(client.ValidationFailed):
        asyncio.run(too_long())


def test_a_wrong_type_is_refused_before_anything_is_sent(
    client: ModuleType, keyed: RunningService
) -> None:
    with client.Client(keyed.url, api_key=KEY) as qa_client:
        with pytest.raises(pydantic.ValidationError):
            qa_client.qa(question=3)  # the server's own rules: no coercion
        with pytest.raises(pydantic.ValidationError):
            client.QaRequest(question="q", extra="not an input")


def test_an_unknown_run_raises_run_not_found(client: ModuleType, keyed: RunningService) -> None:
    with client.Client(keyed.url, api_key=KEY) as qa_client:
        with pytest.raises(client.RunNotFound) as missing:
            qa_client.read_run("0" * 32)
        assert missing.value.status == 404
        with pytest.raises(client.RunNotFound):
            qa_client.cancel_run("0" * 32)


def test_an_lm_failure_raises_its_typed_error_and_fails_each_batch_item(
    client: ModuleType, failing: RunningService
) -> None:
    with client.Client(failing.url) as qa_client:
        with pytest.raises(client.UpstreamFailed) as failed:
            qa_client.qa(question=question())
        assert failed.value.status == 502 and failed.value.request_id
        with pytest.raises(client.UpstreamFailed):  # before the first event: the status line
            list(qa_client.qa.stream(question=question()))
        results = qa_client.qa.batch([client.QaRequest(question=question())] * 2)
        assert all(isinstance(result, client.UpstreamFailed) for result in results), results
        assert all(result.request_id for result in results)

    async def fail() -> list[Any]:
        async with client.AsyncClient(failing.url) as qa_client:
            with pytest.raises(client.UpstreamFailed):
                await qa_client.qa(question=question())
            return await qa_client.qa.batch([client.QaRequest(question=question())])

    assert isinstance(asyncio.run(fail())[0], client.ServiceError)


# --- Cancel and resume -------------------------------------------------------------


def test_cancel_ends_the_stream_with_cancelled_and_closes_the_lm_stream(
    client: ModuleType, slow: RunningService, fake_lm: FakeLM
) -> None:
    before = fake_lm.stats()["streams_disconnected"]
    with client.Client(slow.url) as qa_client, qa_client.qa.stream(question=question()) as stream:
        events = []
        for event in stream:
            events.append(event)
            if sum(isinstance(e, client.Token) for e in events) == 2:
                stream.cancel()
    assert isinstance(events[-1], client.Error) and events[-1].code == "cancelled"
    assert isinstance(events[-1].exception(), client.RunCancelled)
    assert wait_until(lambda: fake_lm.stats()["streams_disconnected"] == before + 1, 5)

    async def cancel_async() -> tuple[Any, dict[str, Any]]:
        async with client.AsyncClient(slow.url) as qa_client:
            async with qa_client.qa.stream(question=question()) as stream:
                async for event in stream:
                    if isinstance(event, client.Token):
                        await stream.cancel()
                        break
                last = [event async for event in stream][-1]
            assert stream.run_id is not None
            return last, await qa_client.read_run(stream.run_id)

    last, state = asyncio.run(cancel_async())
    assert isinstance(last, client.Error) and last.code == "cancelled"
    assert state["status"] == "cancelled"
    assert wait_until(lambda: fake_lm.stats()["streams_disconnected"] == before + 2, 5)


def cut_first_requests(index: int, headers: dict[bytes, bytes]) -> int | None:
    """Cut a stream after 6 events, unless it is the client's own resume."""
    return None if b"last-event-id" in headers else 6


def test_a_cut_stream_resumes_the_same_run_with_no_gap_or_duplicate(
    client: ModuleType, slow: RunningService, fake_lm: FakeLM
) -> None:
    with CuttingProxy(slow.url, cut_request=cut_first_requests) as proxy:
        asked = question()
        with client.Client(proxy.url) as qa_client:
            events = list(qa_client.qa.stream(question=asked))
        assert proxy.cuts == 1 and proxy.connections == 2
        check_one_run(client, events)
        assert lm_requests_for(fake_lm, asked) == 1

        async def read() -> list[Any]:
            async with client.AsyncClient(proxy.url) as qa_client:
                return [event async for event in qa_client.qa.stream(question=asked_async)]

        asked_async = question()
        events = asyncio.run(read())
        assert proxy.cuts == 2
        check_one_run(client, events)
        assert lm_requests_for(fake_lm, asked_async) == 1


def test_a_stream_that_cannot_be_resumed_raises_connection_lost(
    client: ModuleType, slow: RunningService
) -> None:
    # Every connection is cut: the first after 3 events, each resume before any.
    with CuttingProxy(slow.url, cut_request=lambda index, headers: 3 if index == 0 else 0) as proxy:
        with client.Client(proxy.url, max_retries=2) as qa_client:
            events = []
            began = time.monotonic()
            with pytest.raises(client.ConnectionLost):
                events.extend(qa_client.qa.stream(question=question()))
        assert proxy.connections == 3  # the stream, then two resumes
        assert time.monotonic() - began >= 2.0  # the server's retry: 1000 ms, twice


# --- Packaging and docs ---------------------------------------------------------------


def test_the_readme_examples_run_against_the_service(project: Path, slow: RunningService) -> None:
    readme = (project / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python client\n", 1)[1].split("\n## ", 1)[0]
    examples = re.findall(r"^```python\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    assert len(examples) == 2  # sync (call and stream), async (stream)
    for example in examples:
        code = example.replace('"http://localhost:8000"', repr(slow.url))
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=project / "src",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip()


def test_the_client_imports_without_the_server_dependencies(project: Path) -> None:
    script = textwrap.dedent(
        """
        import importlib.abc, sys

        SERVER = {"dspy", "fastapi", "starlette", "litellm", "uvicorn", "redis"}

        class Refuse(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.partition(".")[0] in SERVER | {"prometheus_client", "pydantic_settings"}:
                    raise ImportError(f"the client imported {name}")

        sys.meta_path.insert(0, Refuse())
        from clientele.client import AsyncClient, Client, QaRequest

        Client("http://127.0.0.1:1").qa
        print(QaRequest(question="q", config="c").model_dump(by_alias=True))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=project / "src",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{'question': 'q', 'config': 'c'}"
