"""http.py: one JSON error body, never echoing input, and the outermost request boundary."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from forge_service.runtime.errors import Failure, RunFailed
from forge_service.runtime.http import (
    RequestBoundary,
    add_error_handlers,
    error_response,
    field_errors,
)
from forge_service.runtime.inputs import Inputs
from forge_service.runtime.logs import current_request_id, request_id_bound
from pydantic import ValidationError

SECRET = "sk-do-not-echo-me"
JSON = {"Content-Type": "application/json"}


class Ask(Inputs):
    question: str
    count: int = 0


def app_with_routes() -> FastAPI:
    app = FastAPI()
    add_error_handlers(app)

    @app.post("/ask")
    async def ask(body: Ask) -> dict[str, str]:
        return {"question": body.question}

    @app.post("/refused")
    async def refused() -> None:
        raise RunFailed(Failure(503, "overloaded", "Too many.", 1.0))

    return app


async def call(app: Any, method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path, **kwargs)


def test_error_response_is_code_message_and_request_id_with_retry_after() -> None:
    with request_id_bound("req-1"):
        response = error_response(Failure(429, "rate_limited", "Slow down.", 2.6))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert json.loads(response.body) == {
        "error": {"code": "rate_limited", "message": "Slow down.", "request_id": "req-1"}
    }


def test_error_response_retry_after_is_at_least_one_second() -> None:
    assert error_response(Failure(503, "x", "y", 0.2)).headers["Retry-After"] == "1"
    assert "Retry-After" not in error_response(Failure(502, "x", "y")).headers


def test_field_errors_never_carry_the_refused_input() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Ask.model_validate({"question": SECRET, "count": SECRET, "extra": SECRET})
    fields = field_errors(excinfo.value.errors())
    assert {tuple(field.loc) for field in fields} == {("count",), ("extra",)}
    assert SECRET not in json.dumps([field.model_dump() for field in fields])


def test_field_errors_escape_what_would_not_encode() -> None:
    errors = [{"loc": ("body", "a\ud800", 0), "msg": "bad \udc00", "type": "x"}]
    (field,) = field_errors(errors)
    assert field.loc == ["body", "a\\ud800", 0]
    assert field.message == "bad \\udc00"
    field.model_dump_json().encode("utf-8")


async def test_invalid_body_is_422_invalid_input_listing_fields_without_the_input() -> None:
    response = await call(
        app_with_routes(), "POST", "/ask", json={"question": SECRET, "count": "1"}
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["fields"] == [
        {"loc": ["body", "count"], "message": "Input should be a valid integer", "type": "int_type"}
    ]
    assert SECRET not in response.text


async def test_a_nan_or_a_lone_surrogate_in_the_body_is_422_not_a_500() -> None:
    app = app_with_routes()
    for body in (b'{"question": "q", "count": NaN}', b'{"question": "\\ud800", "x": 1}'):
        response = await call(app, "POST", "/ask", content=body, headers=JSON)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_input"


async def test_a_body_that_is_not_json_is_400_invalid_json() -> None:
    response = await call(app_with_routes(), "POST", "/ask", content=b"{not json", headers=JSON)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


async def test_starlettes_404_and_405_get_the_error_body() -> None:
    app = app_with_routes()
    missing = await call(app, "GET", "/nowhere")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    wrong = await call(app, "GET", "/ask")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (405, "method_not_allowed")


async def test_a_refused_run_answers_its_failure_with_retry_after() -> None:
    response = await call(app_with_routes(), "POST", "/refused")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "overloaded"


async def crashing(scope: Any, receive: Any, send: Any) -> None:
    raise RuntimeError("boom")


async def test_request_boundary_turns_a_crash_into_a_json_500_with_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    response = await call(
        RequestBoundary(crashing), "GET", "/x", headers={"X-Request-ID": "abc-123"}
    )
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "abc-123"
    assert response.json() == {
        "error": {
            "code": "internal_error",
            "message": "The service failed; see the server log.",
            "request_id": "abc-123",
        }
    }
    assert "boom" not in response.text
    assert any(record.exc_info and "unhandled error" in record.message for record in caplog.records)


async def test_request_boundary_makes_up_an_id_for_an_unsafe_x_request_id() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(current_request_id())
        await error_response(Failure(418, "teapot", "No."))(scope, receive, send)

    response = await call(RequestBoundary(app), "GET", "/", headers={"X-Request-ID": "a b\n"})
    given = response.headers["X-Request-ID"]
    assert given != "a b\n" and len(given) == 32
    assert seen == [given] == [response.json()["error"]["request_id"]]


async def test_request_boundary_reraises_a_crash_after_the_response_started() -> None:
    async def half(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("mid-stream")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    with pytest.raises(RuntimeError, match="mid-stream"):
        await RequestBoundary(half, access_log=False)(scope, None, send)  # type: ignore[arg-type]
    assert [message["type"] for message in sent] == ["http.response.start"]


class Recorder(logging.Handler):
    """Keeps each record with the request id current when it was logged."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[logging.LogRecord, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record, current_request_id()))


async def test_request_boundary_logs_one_access_line_per_request_with_its_id() -> None:
    recorder = Recorder()
    access = logging.getLogger("access")
    access.addHandler(recorder)
    access.setLevel(logging.INFO)
    try:
        await call(
            RequestBoundary(app_with_routes()), "GET", "/nowhere", headers={"X-Request-ID": "r7"}
        )
    finally:
        access.removeHandler(recorder)
    ((record, request_id),) = recorder.lines
    assert request_id == "r7"
    assert record.http["method"] == "GET"  # type: ignore[attr-defined]
    assert record.http["path"] == "/nowhere"  # type: ignore[attr-defined]
    assert record.http["status"] == 404  # type: ignore[attr-defined]
    assert isinstance(record.http["ms"], float)  # type: ignore[attr-defined]
    assert record.getMessage().startswith("GET /nowhere 404 ")


async def test_request_boundary_without_access_log_logs_no_access_line() -> None:
    recorder = Recorder()
    logging.getLogger("access").addHandler(recorder)
    try:
        await call(RequestBoundary(app_with_routes(), access_log=False), "GET", "/nowhere")
    finally:
        logging.getLogger("access").removeHandler(recorder)
    assert recorder.lines == []
