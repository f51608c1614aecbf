"""The service's guards, with settings chosen per test: keys, limits, ids, discovery, readiness."""

from typing import Any

from dspy.utils.dummies import DummyLM
from fastapi.testclient import TestClient

from research_agent.app import create_app
from research_agent.runtime import playground
from research_agent.settings import Settings

PROGRAMS = [
    "agent",
]
PROGRAM = "agent"
INPUTS: dict[str, Any] = {
    "question": "sample text",
}


def client(**settings: Any) -> TestClient:
    """A client of the app with ``settings`` on top of the defaults, on an LM with no answers."""
    app_settings = Settings(_env_file=None, **settings)  # type: ignore[call-arg]
    return TestClient(create_app(app_settings, lm=DummyLM([])))


def test_api_keys_guard_every_path_but_the_open_ones() -> None:
    guarded = client(api_keys=["a-key"], open_paths=["/healthz"])
    assert guarded.get("/healthz").status_code == 200
    refused = guarded.get("/v1/programs")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert guarded.get("/v1/programs", headers={"Authorization": "Bearer a-key"}).is_success
    assert guarded.get("/v1/programs", headers={"X-API-Key": "a-key"}).is_success
    assert guarded.get("/v1/programs", headers={"X-API-Key": "another"}).status_code == 401


def test_a_body_over_the_limit_gets_413() -> None:
    response = client(max_body_bytes=10).post(f"/v1/{PROGRAM}", json=INPUTS)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_the_request_id_comes_back() -> None:
    response = client().get("/healthz", headers={"X-Request-ID": "my-id-1"})
    assert response.headers["x-request-id"] == "my-id-1"


def test_every_program_is_listed() -> None:
    listed = client().get("/v1/programs").json()
    assert [entry["name"] for entry in listed] == PROGRAMS
    for entry in listed:
        assert entry["input_schema"]["type"] == "object"
        assert entry["output_schema"]["type"] == "object"


def test_readyz_reports_every_program() -> None:
    body = client().get("/readyz").json()
    assert body["ready"] is True
    assert sorted(body["programs"]) == sorted(PROGRAMS)


def test_the_playground_loads_without_a_key_under_a_strict_policy() -> None:
    guarded = client(api_keys=["a-key"])
    for name in playground.FILES:
        path = "/playground" if name == "index.html" else f"/playground/{name}"
        response = guarded.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == playground.FILES[name]
        assert "script-src 'self'" in response.headers["content-security-policy"]
    assert guarded.get("/playground/config.json").json()["api_keys"] is True
    assert guarded.get("/playground/other.js").status_code == 404
    assert client(playground=False).get("/playground").status_code == 404
