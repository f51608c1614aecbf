"""The generated service as a team runs it in production, proved over real HTTP.

A project generated from a spec with a ``server:`` section is served under
uvicorn on the fake LM; each test checks one promise (auth, CORS, limits,
readiness, metrics, discovery, batch, request ids, logs, container) including
the refusals.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from dspy_forge.dev.devserver import RunningService, fake_lm_env, running_service
from dspy_forge.dev.fakelm.testing import FakeLM
from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec_text

from .serving import served

SPEC = """
version: 1
service: {name: guarded, title: Guarded}
lm: {model: openai/gpt-4o-mini, api_key_env: GUARDED_LM_KEY}
programs:
  ask:
    module: Predict
    signature: "question -> answer"
    stream: [{field: answer}]
  think:
    module: ChainOfThought
    signature: "question, context: list[str] -> answer, confidence: float"
    stream: [{field: answer}]
server:
  auth: {open_paths: [/healthz, /readyz]}
  cors: {origins: ["https://app.example.com"], methods: [GET, POST]}
  max_body_bytes: 4000
  max_input_chars: 200
  batch_parallelism: 2
  batch_max_items: 5
"""


@dataclass(frozen=True)
class Served:
    """A running service and the file its output goes to."""

    url: str
    log: Path


KEYS = ("first-key-1f3a", "second-key-9c2b")
QUESTION = {"question": "What is the meaning of life?"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(load_spec_text(SPEC), tmp_path_factory.mktemp("guarded") / "project")


@pytest.fixture
def serve(project: Path, fake_lm: FakeLM, tmp_path: Path) -> Callable[..., Any]:
    """Serve the project on the fake LM with ``env`` on top of the defaults."""

    @contextmanager
    def start(*, as_module: bool = False, **env: str) -> Iterator[tuple[RunningService, Path]]:
        log = tmp_path / "service.log"
        settings = {"LM_MODEL": "openai/gpt-4o-mini", **env}
        with served(project, "guarded", fake_lm, log, env=settings, as_module=as_module) as service:
            yield service, log

    return start


@pytest.fixture(scope="module")
def guarded(
    project: Path, fake_lm: FakeLM, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One service with API keys, shared by the tests that only read from it."""
    log = tmp_path_factory.mktemp("logs") / "service.log"
    env = {
        **fake_lm_env(fake_lm.api_base),
        "LM_MODEL": "openai/gpt-4o-mini",
        "API_KEYS": ",".join(KEYS),
    }
    with log.open("wb") as sink, running_service(project, "guarded", env, log=sink) as service:
        yield Served(service.url, log)


def bearer(key: str = KEYS[0]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# --- Auth ---------------------------------------------------------------------------


def test_requests_without_a_valid_key_get_401(guarded: Served) -> None:
    for headers in ({}, bearer("wrong-key"), {"X-API-Key": "wrong-key"}, {"Authorization": "x"}):
        response = httpx.post(f"{guarded.url}/v1/ask", json=QUESTION, headers=headers)
        assert response.status_code == 401
        assert response.json() == {
            "error": {
                "code": "unauthorized",
                "message": "A valid API key is required.",
                "request_id": response.headers["x-request-id"],
            }
        }
        assert response.headers["www-authenticate"] == "Bearer"
    stream = httpx.post(f"{guarded.url}/v1/ask/stream", json=QUESTION)
    assert stream.status_code == 401
    assert httpx.get(f"{guarded.url}/v1/programs").status_code == 401
    assert httpx.get(f"{guarded.url}/metrics").status_code == 401
    assert httpx.get(f"{guarded.url}/no-such-path").status_code == 401
    # The documentation stays readable (DOCS_PUBLIC), its operations still need a key.
    assert httpx.get(f"{guarded.url}/openapi.json").status_code == 200
    assert httpx.get(f"{guarded.url}/docs").status_code == 200


def test_the_docs_need_a_key_when_docs_public_is_off(serve: Callable[..., Any]) -> None:
    with serve(API_KEYS=KEYS[0], DOCS_PUBLIC="false") as (service, _):
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert httpx.get(f"{service.url}{path}").status_code == 401
        assert httpx.get(f"{service.url}/openapi.json", headers=bearer()).status_code == 200


def test_either_header_and_every_key_is_accepted(guarded: Served) -> None:
    for headers in (bearer(KEYS[0]), bearer(KEYS[1]), {"X-API-Key": KEYS[1]}):
        response = httpx.post(f"{guarded.url}/v1/ask", json=QUESTION, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["answer"]


def test_open_paths_need_no_key(guarded: Served) -> None:
    assert httpx.get(f"{guarded.url}/healthz").status_code == 200
    assert httpx.get(f"{guarded.url}/readyz").status_code == 200


def test_metrics_can_be_made_open(serve: Callable[..., Any]) -> None:
    with serve(API_KEYS=KEYS[0], OPEN_PATHS="/healthz,/metrics") as (service, _):
        assert httpx.get(f"{service.url}/metrics").status_code == 200
        assert httpx.get(f"{service.url}/readyz").status_code == 401


def test_keys_never_reach_the_logs(guarded: Served) -> None:
    httpx.post(f"{guarded.url}/v1/ask", json=QUESTION, headers=bearer())
    httpx.post(f"{guarded.url}/v1/ask", json=QUESTION, headers=bearer("leaked-wrong-key"))
    text = guarded.log.read_text()
    assert text  # the service does log
    for secret in (*KEYS, "leaked-wrong-key"):
        assert secret not in text


def test_required_keys_refuse_to_start_without_any(project: Path, fake_lm: FakeLM) -> None:
    env = {
        **os.environ,
        **fake_lm_env(fake_lm.api_base),
        "PYTHONPATH": str(project / "src"),
        "API_KEYS_REQUIRED": "true",
    }
    env.pop("API_KEYS", None)
    result = subprocess.run(
        [sys.executable, "-c", "import guarded.main"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "API_KEYS_REQUIRED is true but API_KEYS is empty" in result.stderr


# --- CORS ---------------------------------------------------------------------------


def preflight(url: str, origin: str) -> httpx.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    return httpx.options(f"{url}/v1/ask", headers=headers)


def test_cors_allows_the_spec_origins_only(guarded: Served) -> None:
    allowed = preflight(guarded.url, "https://app.example.com")
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    refused = preflight(guarded.url, "https://evil.example.com")
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    response = httpx.post(
        f"{guarded.url}/v1/ask",
        json=QUESTION,
        headers={**bearer(), "Origin": "https://app.example.com"},
    )
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


def test_cors_is_closed_when_no_origin_is_set(serve: Callable[..., Any]) -> None:
    # A lone comma is the empty list (an empty variable keeps the spec's default).
    with serve(CORS_ORIGINS=",") as (service, _):
        response = preflight(service.url, "https://app.example.com")
        assert "access-control-allow-origin" not in response.headers
        assert response.status_code == 405


# --- Limits -------------------------------------------------------------------------


def test_an_oversized_body_gets_413(guarded: Served) -> None:
    body = json.dumps({"question": "x" * 5000})
    headers = {**bearer(), "content-type": "application/json"}
    declared = httpx.post(f"{guarded.url}/v1/ask", content=body, headers=headers)
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts as it reads
        yield body[:2500].encode()
        yield body[2500:].encode()

    streamed = httpx.post(f"{guarded.url}/v1/ask/stream", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "payload_too_large"


def test_an_overlong_input_field_gets_422_naming_it(guarded: Served) -> None:
    long = {"question": "x" * 201, "context": []}
    for path in ("/v1/think", "/v1/think/stream"):
        response = httpx.post(f"{guarded.url}{path}", json=long, headers=bearer())
        assert response.status_code == 422
        [field] = response.json()["error"]["fields"]
        assert field["loc"] == ["body", "question"]
        assert "at most 200" in field["message"]
    # Non-text inputs count the characters of their JSON.
    listed = {"question": "q", "context": ["y" * 100, "z" * 100]}
    response = httpx.post(f"{guarded.url}/v1/think", json=listed, headers=bearer())
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["loc"] == ["body", "context"]


# --- Readiness ----------------------------------------------------------------------


def test_readyz_reports_programs_and_lm(guarded: Served) -> None:
    response = httpx.get(f"{guarded.url}/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "ready": True,
        "draining": False,
        "run_store": True,
        "programs": {
            name: {"built": True, "state": None, "predictors": [predictor], "lm_configured": True}
            for name, predictor in (("ask", "self"), ("think", "predict"))
        },
    }
    assert httpx.get(f"{guarded.url}/healthz").json() == {"status": "ok"}


def test_readyz_is_503_without_an_lm_key(serve: Callable[..., Any]) -> None:
    # No LM_API_KEY and no GUARDED_LM_KEY: alive, but not ready for traffic.
    with serve(LM_API_KEY="", GUARDED_LM_KEY="") as (service, _):
        assert httpx.get(f"{service.url}/healthz").status_code == 200
        response = httpx.get(f"{service.url}/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["ready"] is False
        assert {p["lm_configured"] for p in body["programs"].values()} == {False}


def test_a_missing_lm_key_is_a_start_up_warning_naming_the_variable(
    serve: Callable[..., Any],
) -> None:
    with serve(LM_API_KEY="", GUARDED_LM_KEY="") as (_, log):
        pass
    warnings = [line for line in log.read_text().splitlines() if "no API key" in line]
    assert warnings, log.read_text()
    assert "set GUARDED_LM_KEY or LM_API_KEY" in warnings[0]


# --- Metrics ------------------------------------------------------------------------


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, 0 when absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_streams_tokens_and_usage(serve: Callable[..., Any]) -> None:
    with serve() as (service, _):
        events = asyncio.run(read_stream(service.url, "/v1/ask/stream", QUESTION))
        tokens = sum(1 for kind, _ in events if kind == "token")
        after_stream = httpx.get(f"{service.url}/metrics").text
        assert httpx.post(f"{service.url}/v1/ask", json=QUESTION).status_code == 200
        assert httpx.post(f"{service.url}/v1/ask", json={}).status_code == 422
        text = httpx.get(f"{service.url}/metrics").text

    ask = {"program": "ask"}
    assert metric(text, "dspy_requests_total", **ask, endpoint="json", outcome="ok") == 1
    assert metric(text, "dspy_requests_total", **ask, endpoint="stream", outcome="ok") == 1
    assert metric(text, "dspy_active_streams") == 0
    assert metric(text, "dspy_stream_duration_seconds_count", **ask) == 1
    assert metric(text, "dspy_time_to_first_token_seconds_count", **ask) == 1
    assert metric(text, "dspy_tokens_streamed_total", **ask) == tokens > 0
    model = {"model": "openai/gpt-4o-mini"}
    assert metric(text, "dspy_lm_call_seconds_count", **ask, **model) == 2
    # Usage is counted for a streamed run too (dspy#8265 reports it can be lost
    # under streaming): the same question streamed, then not, counts the same twice.
    for kind in ("prompt", "completion"):
        streamed = metric(after_stream, "dspy_lm_tokens_total", **ask, **model, kind=kind)
        assert streamed > 0
        assert metric(text, "dspy_lm_tokens_total", **ask, **model, kind=kind) == 2 * streamed
    # gpt-4o-mini's price is in LiteLLM's bundled list: the cost follows from the tokens.
    cost = metric(after_stream, "dspy_lm_cost_usd_total", **ask, **model)
    assert cost > 0
    assert metric(text, "dspy_lm_cost_usd_total", **ask, **model) == pytest.approx(2 * cost)


def test_metrics_count_lm_errors_by_code(serve: Callable[..., Any], fake_lm: FakeLM) -> None:
    with serve(LM_API_BASE=fake_lm.scenario_base("http-429"), LM_NUM_RETRIES="0") as (
        service,
        _,
    ):
        response = httpx.post(f"{service.url}/v1/ask", json=QUESTION)
        assert response.status_code == 429
        text = httpx.get(f"{service.url}/metrics").text
    labels = {"program": "ask", "model": "openai/gpt-4o-mini", "code": "rate_limited"}
    assert metric(text, "dspy_lm_errors_total", **labels) == 1
    assert metric(text, "dspy_requests_total", program="ask", outcome="rate_limited") == 1


# --- Discovery and batch ------------------------------------------------------------


def test_programs_are_listed_with_their_schemas(guarded: Served) -> None:
    response = httpx.get(f"{guarded.url}/v1/programs", headers=bearer())
    assert response.status_code == 200
    programs = {entry["name"]: entry for entry in response.json()}
    assert set(programs) == {"ask", "think"}
    think = programs["think"]
    assert think["module"] == "ChainOfThought"
    assert think["streams"] == ["predict.answer"]
    assert programs["ask"]["streams"] == ["self.answer"]
    assert think["input_schema"]["required"] == ["question", "context"]
    assert think["input_schema"]["properties"]["context"]["type"] == "array"
    outputs = think["output_schema"]["properties"]
    assert set(outputs) == {"reasoning", "answer", "confidence"}
    assert outputs["confidence"]["type"] == "number"
    assert think["endpoints"] == {
        "run": "/v1/think",
        "stream": "/v1/think/stream",
        "batch": "/v1/think/batch",
    }


def test_batch_returns_results_in_input_order(guarded: Served) -> None:
    inputs = [{"question": f"Question number {n}?"} for n in range(5)]
    # The fake LM's answer is a function of the question: one by one, then as a batch.
    singles = [
        httpx.post(f"{guarded.url}/v1/ask", json=item, headers=bearer()).json() for item in inputs
    ]
    assert len({single["answer"] for single in singles}) == 5
    response = httpx.post(
        f"{guarded.url}/v1/ask/batch", json={"inputs": inputs}, headers=bearer(), timeout=30
    )
    assert response.status_code == 200
    assert response.json() == {
        "results": [{"outputs": single, "error": None} for single in singles]
    }


def test_batch_item_failures_are_errors_in_place(
    serve: Callable[..., Any], fake_lm: FakeLM
) -> None:
    with serve(LM_API_BASE=fake_lm.scenario_base("http-503"), LM_NUM_RETRIES="0") as (service, _):
        response = httpx.post(
            f"{service.url}/v1/ask/batch", json={"inputs": [QUESTION, QUESTION]}, timeout=30
        )
    assert response.status_code == 200
    for result in response.json()["results"]:
        assert result["outputs"] is None
        assert result["error"]["code"] == "upstream_error"


def test_batch_refuses_too_many_or_too_long_items(guarded: Served) -> None:
    six = {"inputs": [QUESTION] * 6}
    response = httpx.post(f"{guarded.url}/v1/ask/batch", json=six, headers=bearer())
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["loc"] == ["body", "inputs"]
    long = {"inputs": [QUESTION, {"question": "x" * 201}]}
    response = httpx.post(f"{guarded.url}/v1/ask/batch", json=long, headers=bearer())
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["loc"] == ["body", "inputs", 1, "question"]


# --- Request ids and logs -----------------------------------------------------------


async def read_stream(
    url: str, path: str, inputs: dict[str, Any], headers: dict[str, str] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    async with (
        httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as client,
        aconnect_sse(client, "POST", path, json=inputs) as source,
    ):
        assert source.response.status_code == 200
        return [(sse.event, json.loads(sse.data)) async for sse in source.aiter_sse()]


def test_request_id_is_taken_returned_and_on_every_event(guarded: Served) -> None:
    headers = {**bearer(), "X-Request-ID": "client-chosen-42"}
    response = httpx.post(f"{guarded.url}/v1/ask", json=QUESTION, headers=headers)
    assert response.headers["x-request-id"] == "client-chosen-42"
    events = asyncio.run(read_stream(guarded.url, "/v1/ask/stream", QUESTION, headers))
    assert [kind for kind, _ in events][-2:] == ["prediction", "done"]
    assert {data["request_id"] for _, data in events} == {"client-chosen-42"}


def test_request_id_is_made_up_when_missing_or_unsafe(guarded: Served) -> None:
    made = httpx.get(f"{guarded.url}/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    unsafe = httpx.get(f"{guarded.url}/healthz", headers={"X-Request-ID": "a b\tc" + "x" * 200})
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["x-request-id"])
    refused = httpx.post(f"{guarded.url}/v1/ask", json=QUESTION, headers={"X-Request-ID": "r-1"})
    assert refused.status_code == 401
    assert refused.headers["x-request-id"] == "r-1"


def test_logs_are_json_lines_with_the_request_id(
    serve: Callable[..., Any], fake_lm: FakeLM
) -> None:
    # A failing LM makes the service log the failure, under the request's id.
    with serve(LM_API_BASE=fake_lm.scenario_base("http-500"), LM_NUM_RETRIES="0") as (
        service,
        log,
    ):
        headers = {"X-Request-ID": "traced-7"}
        assert httpx.post(f"{service.url}/v1/ask", json=QUESTION, headers=headers).is_error
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    traced = [entry for entry in entries if entry["request_id"] == "traced-7"]
    assert traced, log.read_text()
    assert {"time", "level", "logger", "message", "request_id"} <= set(traced[0])


def test_text_logs_when_asked(serve: Callable[..., Any], fake_lm: FakeLM) -> None:
    with serve(
        LOG_FORMAT="text", LM_API_BASE=fake_lm.scenario_base("http-500"), LM_NUM_RETRIES="0"
    ) as (service, log):
        headers = {"X-Request-ID": "traced-8"}
        assert httpx.post(f"{service.url}/v1/ask", json=QUESTION, headers=headers).is_error
    lines = [line for line in log.read_text().splitlines() if "[traced-8]" in line]
    assert lines
    assert not lines[0].startswith("{")


# --- Container ----------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, with continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_is_multi_stage_non_root_and_copies_what_exists(project: Path) -> None:
    instructions = dockerfile_instructions((project / "Dockerfile").read_text())
    known = {"FROM", "WORKDIR", "COPY", "RUN", "USER", "ENV", "EXPOSE", "HEALTHCHECK", "CMD"}
    assert {keyword for keyword, _ in instructions} <= known
    stages = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert len(stages) == 2 and instructions[0][1].endswith("AS build")
    final = instructions[stages[-1] :]
    users = [args for keyword, args in final if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    user_index = final.index(("USER", users[-1]))
    assert final[-1] == ("CMD", '["python", "-m", "guarded"]')
    assert user_index < len(final) - 1
    for keyword, args in instructions:
        if keyword == "COPY" and not args.startswith("--from"):
            *sources, _ = args.split()
            for source in sources:
                assert (project / source).exists(), f"COPY {source}: not in the project"
    ignored = (project / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".git/" in ignored
    readme = (project / "README.md").read_text()
    assert "docker run -p 8000:8000 --env-file .env guarded" in readme


def test_the_container_command_serves_outside_a_container(serve: Callable[..., Any]) -> None:
    # The image runs `python -m guarded` with HOST and PORT from its environment.
    with serve(as_module=True) as (service, log):
        assert httpx.get(f"{service.url}/readyz").status_code == 200
        response = httpx.post(f"{service.url}/v1/ask", json=QUESTION, headers=bearer())
        assert response.status_code == 200
    assert "Traceback" not in log.read_text()


def test_the_container_command_logs_each_request_with_its_id(serve: Callable[..., Any]) -> None:
    with serve(as_module=True, LOG_FORMAT="json") as (service, log):
        headers = {**bearer(), "X-Request-ID": "access-1"}
        assert httpx.post(f"{service.url}/v1/ask", json=QUESTION, headers=headers).is_success
        assert httpx.get(f"{service.url}/nowhere", headers=bearer()).status_code == 404
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [entry for entry in entries if entry["logger"] == "access"]
    assert {key: access[-2]["http"][key] for key in ("method", "path", "status")} == {
        "method": "POST",
        "path": "/v1/ask",
        "status": 200,
    }
    assert access[-2]["request_id"] == "access-1"
    assert access[-1]["http"]["status"] == 404
