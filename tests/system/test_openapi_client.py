"""The contract a client generator reads: a client made from /openapi.json works as it is.

A generated service with API keys is served on the fake LM; its document is
validated as OpenAPI 3.1, openapi-python-client generates a client from it, and
that client, without a hand edit, authenticates, runs a program, reads a 422,
and streams (both whole, and event by event through its own httpx client).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse
from openapi_spec_validator import validate

from dspy_forge.dev.devserver import RunningService, fake_lm_env, running_service
from dspy_forge.dev.fakelm.testing import FakeLM
from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec_text

SPEC = """
version: 1
service: {name: typed, title: Typed}
lm: {model: openai/gpt-4o-mini, api_key_env: TYPED_LM_KEY}
programs:
  ask:
    module: ChainOfThought
    signature: "question, strict: bool | None -> answer"
    stream: [{field: answer}]
"""
KEY = "client-key-7d1e"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, fake_lm: FakeLM) -> Iterator[RunningService]:
    project = generate(load_spec_text(SPEC), tmp_path_factory.mktemp("typed") / "project")
    env = {**fake_lm_env(fake_lm.api_base), "API_KEYS": KEY}
    with running_service(project, "typed", env) as running:
        yield running


@pytest.fixture(scope="module")
def document(service: RunningService) -> dict[str, Any]:
    # The documentation stays readable without a key (DOCS_PUBLIC).
    response = httpx.get(f"{service.url}/openapi.json", timeout=10)
    assert response.status_code == 200
    return response.json()


@pytest.fixture(scope="module")
def client_package(document: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> str:
    """Generate a client with openapi-python-client and make it importable."""
    folder = tmp_path_factory.mktemp("client")
    spec = folder / "openapi.json"
    spec.write_text(json.dumps(document))
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        [str(bin_dir / "openapi-python-client"), "generate", "--path", str(spec), "--meta", "none"],
        cwd=folder,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(folder))
    return "typed_client"


def client_module(package: str, name: str) -> ModuleType:
    return importlib.import_module(f"{package}.{name}")


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_a_stream_documents_only_its_event_stream_and_its_event_schemas(
    document: dict[str, Any],
) -> None:
    responses = document["paths"]["/v1/ask/stream"]["post"]["responses"]
    assert list(responses["200"]["content"]) == ["text/event-stream"]
    events = responses["200"]["content"]["text/event-stream"]["x-sse-events"]
    assert set(events) == {"status", "token", "prediction", "error", "done"}
    schemas = document["components"]["schemas"]
    for name in ("StatusEvent", "TokenEvent", "ErrorEvent", "DoneEvent", "AskResponse"):
        assert name in schemas
    for status, response in responses.items():
        if status != "200":
            assert list(response["content"]) == ["application/json"], status


def test_the_api_key_schemes_are_declared(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key of API_KEYS.",
    }
    assert schemes["apiKeyAuth"]["name"] == "X-API-Key"
    assert document["paths"]["/v1/ask"]["post"]["security"] == [
        {"bearerAuth": []},
        {"apiKeyAuth": []},
    ]
    assert document["paths"]["/healthz"]["get"]["security"] == []
    # Every status the service serves is documented, 401 wherever a key is needed.
    assert "401" in document["paths"]["/metrics"]["get"]["responses"]
    assert "401" not in document["paths"]["/healthz"]["get"]["responses"]
    assert "503" in document["paths"]["/readyz"]["get"]["responses"]
    for status in ("400", "408", "413", "422", "429", "502", "503", "504"):
        assert status in document["paths"]["/v1/ask"]["post"]["responses"], status


def test_a_generated_client_authenticates_runs_and_reads_a_422(
    service: RunningService, client_package: str
) -> None:
    package = importlib.import_module(client_package)
    run = client_module(client_package, "api.programs.run_ask_v1_ask_post")
    models = client_module(client_package, "models")
    client = package.AuthenticatedClient(base_url=service.url, token=KEY)

    answer = run.sync(client=client, body=models.AskRequest(question="Why?"))
    assert isinstance(answer, models.AskResponse)
    assert answer.answer and answer.reasoning

    wrong = run.sync(client=client, body=models.AskRequest(question="Why?", strict=0))  # type: ignore[arg-type]
    assert isinstance(wrong, models.ErrorResponse)
    assert wrong.error.code == "invalid_input"
    assert [field.loc for field in wrong.error.fields] == [["body", "strict"]]

    anonymous = package.Client(base_url=service.url)
    refused = run.sync(client=anonymous, body=models.AskRequest(question="Why?"))
    assert isinstance(refused, models.ErrorResponse)
    assert refused.error.code == "unauthorized"


def test_a_generated_client_streams(service: RunningService, client_package: str) -> None:
    package = importlib.import_module(client_package)
    stream = client_module(client_package, "api.programs.stream_ask_v1_ask_stream_post")
    models = client_module(client_package, "models")
    client = package.AuthenticatedClient(base_url=service.url, token=KEY)

    whole = stream.sync(client=client, body=models.AskRequest(question="Why?"))
    assert isinstance(whole, str)
    assert "event: token" in whole and "event: done" in whole

    # Event by event, through the generated client's own (authenticated) httpx client.
    tokens: list[Any] = []
    names: list[str] = []
    with connect_sse(
        client.get_httpx_client(), "POST", "/v1/ask/stream", json={"question": "Why?"}
    ) as source:
        for sse in source.iter_sse():
            names.append(sse.event)
            if sse.event == "token":
                tokens.append(models.TokenEvent.from_dict(json.loads(sse.data)))
    assert names[-2:] == ["prediction", "done"]
    assert tokens and all(token.field == "answer" for token in tokens)


def test_the_docs_page_is_served_offline(service: RunningService) -> None:
    page = httpx.get(f"{service.url}/docs", timeout=10)
    assert page.status_code == 200
    assert "cdn" not in page.text.lower()
    assets = [part.split('"')[0] for part in page.text.split('src="')[1:]]
    assets += [part.split('"')[0] for part in page.text.split('href="')[1:]]
    assert assets
    for asset in assets:
        assert asset.startswith("/static-offline-docs/"), asset
        assert httpx.get(f"{service.url}{asset}", timeout=10).status_code == 200
