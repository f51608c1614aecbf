"""Tracing over OTLP, received by a real receiver: Arize Phoenix, on loopback.

The research agent (a ReAct program with a ``search`` tool) is served with
``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at a Phoenix started for the module
(its own port and working directory); one stream later, Phoenix's REST API
must hold the span tree: one run span, with the program, request id and run
id, and beneath it the ReAct module, the LM calls (model, tokens) and the tool
call. Off, the service imports nothing of OpenTelemetry's SDK (the last test here).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from dspy_forge.dev.devserver import fake_lm_env, free_port
from dspy_forge.dev.fakelm.testing import FakeLM

from .serving import served, wait_until

PACKAGE = "research_agent"
PROJECT = "forge-tracing"


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Phoenix server on a free loopback port, its store in a temporary folder."""
    work = tmp_path_factory.mktemp("phoenix")
    port, grpc_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    env = {
        **os.environ,
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(grpc_port),
        "PHOENIX_WORKING_DIR": str(work),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    with (work / "phoenix.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "phoenix.server.main", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:

            def up() -> bool:
                try:
                    return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return server.poll() is not None

            assert wait_until(up, timeout=120), "Phoenix did not start"
            assert server.poll() is None, (work / "phoenix.log").read_text()[-2000:]
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def spans_of(phoenix: str) -> list[dict[str, Any]]:
    """Every span Phoenix holds in the test's project (one page is enough here)."""
    response = httpx.get(
        f"{phoenix}/v1/projects/{PROJECT}/spans", params={"limit": 1000}, timeout=10
    )
    if response.status_code == 404:  # no span has reached the project yet
        return []
    response.raise_for_status()
    return list(response.json()["data"])


def test_a_react_stream_is_one_span_tree_in_phoenix(
    phoenix: str,
    example_project: Callable[[str], Path],
    fake_lm: FakeLM,
    tmp_path: Path,
) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": phoenix,
        "OTEL_SERVICE_NAME": "research-agent-under-test",
        # Phoenix files spans under this project; the batch is sent every 200 ms.
        "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={PROJECT}",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    project = example_project("research-agent")
    with served(project, PACKAGE, fake_lm, tmp_path / "service.log", env=env) as service:
        with (
            httpx.Client(base_url=service.url, timeout=60) as client,
            connect_sse(
                client,
                "POST",
                "/v1/agent/stream",
                json={"question": "Who wrote it?"},
                headers={"X-Request-ID": "trace-me-1"},
            ) as source,
        ):
            assert source.response.status_code == 200
            run_id = source.response.headers["X-Run-ID"]
            names = [sse.event for sse in source.iter_sse()]
        assert names[-1] == "done", names

        def run_span_arrived() -> bool:
            return any(s["name"] == "run agent" for s in spans_of(phoenix))

        # Generous: the export is asynchronous, Phoenix stores in the background.
        assert wait_until(run_span_arrived, timeout=60), (tmp_path / "service.log").read_text()
        time.sleep(1.0)  # the rest of the batch, if it was split
    spans = spans_of(phoenix)
    runs = [s for s in spans if s["name"] == "run agent"]
    assert len(runs) == 1
    run = runs[0]
    attributes = run["attributes"]
    assert attributes["dspy_forge.program"] == "agent"
    assert attributes["dspy_forge.run_id"] == run_id
    assert attributes["http.request.id"] == "trace-me-1"
    assert run["parent_id"] is None

    tree = [s for s in spans if s["context"]["trace_id"] == run["context"]["trace_id"]]
    children: dict[str, list[dict[str, Any]]] = {}
    for span in tree:
        children.setdefault(span["parent_id"] or "", []).append(span)

    def descendants(span: dict[str, Any]) -> list[dict[str, Any]]:
        found = []
        for child in children.get(span["context"]["span_id"], []):
            found += [child, *descendants(child)]
        return found

    below = descendants(run)
    # The program's own module is the run span's one child; everything else is below it.
    assert [c["name"] for c in children[run["context"]["span_id"]]] == ["ReAct.aforward"]
    assert len(below) == len(tree) - 1, "every span of the trace is beneath the run span"
    # Phoenix keeps OpenInference's span kind (openinference.span.kind) as span_kind.
    kinds = {s["span_kind"] for s in below}
    assert {"CHAIN", "LLM", "TOOL"} <= kinds, kinds
    tools = [s for s in below if s["span_kind"] == "TOOL"]
    # OpenInference names a tool's span after the tool: ReAct's own "finish" is one too.
    assert "search.acall" in {s["name"] for s in tools}, [s["name"] for s in tools]
    lms = [s for s in below if s["span_kind"] == "LLM"]
    assert lms
    for lm in lms:
        assert lm["attributes"]["llm.model_name"] == "fake-model"  # fake_lm_env's model
        assert lm["attributes"]["llm.token_count.prompt"] > 0
        assert lm["attributes"]["llm.token_count.completion"] > 0


OFF_CHECK = """
import sys

import dspy

from research_agent.app import create_app
from research_agent.runtime import tracing

before = list(dspy.settings.callbacks)
create_app()
# The mcp SDK imports opentelemetry's API itself; the SDK, exporter and instrumentor are ours.
ours = ("opentelemetry.sdk", "opentelemetry.exporter", "openinference")
loaded = sorted(m for m in sys.modules if m.startswith(ours))
assert not loaded, loaded
assert dspy.settings.callbacks == before, dspy.settings.callbacks
assert not tracing.enabled()
# Off, every run gets the same null context: nothing is allocated per run.
assert tracing.run_span("agent", "stream", "r", "q") is tracing.run_span("other", "json")
cases = [
    ({}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
    ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_SDK_DISABLED": "TRUE"}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ({"OTEL_SERVICE_NAME": "named-but-not-exported"}, False),
]
for environ, expected in cases:
    assert tracing.wanted(environ) is expected, environ
print("off")
"""


def test_with_no_otel_variables_nothing_of_opentelemetry_is_imported(
    example_project: Callable[[str], Path], fake_lm: FakeLM
) -> None:
    project = example_project("research-agent")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(fake_lm_env(fake_lm.api_base), PYTHONPATH=str(project / "src"))
    result = subprocess.run(
        [sys.executable, "-c", OFF_CHECK],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("off")
