"""openapi.py: the document a client generator reads, with auth schemes and stream events."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from forge_service.runtime.http import STREAM_RESPONSE
from forge_service.runtime.openapi import REQUIRED, SCHEMES, install_openapi
from starlette.responses import Response

from .helpers import Answer, Ask

STREAM = "/v1/qa/stream"


def app_with(keys: bool, open_paths: tuple[str, ...] = ("/healthz",)) -> FastAPI:
    app = FastAPI(title="QA", version="1.0")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/qa")
    async def run_qa(body: Ask) -> Answer:
        return Answer(answer="x")

    @app.post(STREAM, responses=STREAM_RESPONSE)
    async def stream_qa(body: Ask) -> Response:
        return Response()

    install_openapi(app, keys=keys, open_paths=open_paths, streams={STREAM: Answer})
    return app


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def test_the_security_schemes_are_bearer_and_x_api_key() -> None:
    schemes = app_with(keys=True).openapi()["components"]["securitySchemes"]
    assert schemes == SCHEMES
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert (schemes["apiKeyAuth"]["in"], schemes["apiKeyAuth"]["name"]) == ("header", "X-API-Key")


def test_with_keys_every_operation_needs_one_and_may_answer_401_except_open_paths() -> None:
    ops = operations(app_with(keys=True).openapi())
    for (path, _), operation in ops.items():
        if path == "/healthz":
            assert operation["security"] == []
            assert "401" not in operation["responses"]
        else:
            assert operation["security"] == REQUIRED
            assert operation["responses"]["401"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"
            }


def test_without_keys_no_operation_needs_one() -> None:
    ops = operations(app_with(keys=False).openapi())
    assert all(operation["security"] == [] for operation in ops.values())
    assert all("401" not in operation["responses"] for operation in ops.values())


def test_a_stream_lists_its_events_with_the_programs_prediction_under_x_sse_events() -> None:
    document = app_with(keys=False).openapi()
    content = document["paths"][STREAM]["post"]["responses"]["200"]["content"]
    events = content["text/event-stream"]["x-sse-events"]
    assert list(events) == ["done", "error", "prediction", "status", "token"]
    assert events["token"] == {"$ref": "#/components/schemas/TokenEvent"}
    assert events["prediction"]["properties"]["outputs"] == {"$ref": "#/components/schemas/Answer"}
    assert events["prediction"]["required"] == ["outputs", "request_id"]
    schemas = document["components"]["schemas"]
    assert {"StatusEvent", "TokenEvent", "ErrorEvent", "DoneEvent", "Answer"} <= set(schemas)


def test_a_streams_200_has_no_json_body() -> None:
    document = app_with(keys=False).openapi()
    content = document["paths"][STREAM]["post"]["responses"]["200"]["content"]
    assert list(content) == ["text/event-stream"]
    assert content["text/event-stream"]["schema"] == {"type": "string"}


def test_the_document_is_built_once() -> None:
    app = app_with(keys=True)
    assert app.openapi() is app.openapi()
