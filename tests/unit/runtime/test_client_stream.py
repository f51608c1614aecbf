"""The typed client's reading of a stream and of error bodies, frame by frame.

End to end, against a served project, in tests/system/test_client.py; here the
decisions in between: which frames are events, which are repeats after a
reconnect, when to give up, and which exception an error body is.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from forge_service.runtime import client_errors
from forge_service.runtime.client_stream import Done, Error, Prediction, Token, _Reader
from httpx_sse import ServerSentEvent
from pydantic import BaseModel

from tests.conftest import ROOT

RUN = "a" * 32


class Outputs(BaseModel):
    answer: str


def frame(event: str, n: int | None, retry: int | None = None, **data: Any) -> ServerSentEvent:
    body = json.dumps({"run_id": RUN, "request_id": "req-1", **data})
    return ServerSentEvent(event=event, data=body, id=f"{RUN}-{n}" if n else "", retry=retry)


def test_frames_become_typed_events_and_repeats_after_a_reconnect_are_dropped() -> None:
    reader = _Reader(Outputs, max_retries=3)
    token = reader.accept(frame("token", 1, retry=250, predictor="p", field="answer", chunk="Hi"))
    assert isinstance(token, Token) and (token.chunk, token.position) == ("Hi", 1)
    assert reader.retry_s == 0.25
    assert reader.accept(ServerSentEvent(event="message", data="")) is None  # a ping
    assert reader.accept(frame("token", 1, predictor="p", field="answer", chunk="Hi")) is None
    assert reader.accept(frame("novel", 2)) is None  # a kind a newer service added
    prediction = reader.accept(frame("prediction", 3, outputs={"answer": "Hi"}))
    assert isinstance(prediction, Prediction) and prediction.outputs == Outputs(answer="Hi")
    assert not reader.ended
    assert isinstance(reader.accept(frame("done", 4)), Done) and reader.ended
    assert reader.resume() == (f"/v1/runs/{RUN}/events", {}, {"last-event-id": f"{RUN}-4"})


def test_an_error_event_ends_the_stream_and_gives_its_typed_exception() -> None:
    reader = _Reader(Outputs, max_retries=3)
    error = reader.accept(frame("error", None, code="slow_reader", message="Behind."))
    assert isinstance(error, Error) and error.id is None and reader.ended
    exception = error.exception()
    assert isinstance(exception, client_errors.RunLost) and exception.request_id == "req-1"


def test_reconnects_without_progress_are_bounded_and_progress_resets_the_count() -> None:
    reader = _Reader(Outputs, max_retries=2)
    with pytest.raises(client_errors.ConnectionLost):
        reader.dropped(None)  # no run id yet: nothing to resume
    reader.run_id = RUN
    assert reader.resume() == (f"/v1/runs/{RUN}/events", {"after": "0"}, {})
    assert reader.dropped(None) == 1.0 and reader.dropped(None) == 1.0
    reader.accept(frame("token", 1, predictor="p", field="answer", chunk="a"))
    assert reader.dropped(None) == 1.0 and reader.dropped(None) == 1.0
    with pytest.raises(client_errors.ConnectionLost):
        reader.dropped(None)


def response(status: int, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers)


def test_an_error_body_is_the_exception_of_its_code_with_what_the_service_said() -> None:
    body = {
        "error": {
            "code": "invalid_input",
            "message": "The request does not validate; see its fields.",
            "request_id": "req-2",
            "fields": [
                {"loc": ["body", "question"], "message": "Field required", "type": "missing"}
            ],
        }
    }
    error = client_errors.error_of(response(422, body))
    assert isinstance(error, client_errors.ValidationFailed)
    assert (error.status, error.request_id, error.fields[0]["loc"]) == (
        422,
        "req-2",
        ["body", "question"],
    )
    limited = {"error": {"code": "too_many_runs", "message": "Wait.", "request_id": "r"}}
    error = client_errors.error_of(response(429, limited, **{"retry-after": "1"}))
    assert isinstance(error, client_errors.TooManyRequests) and error.retry_after == 1.0
    unknown = {"error": {"code": "brand_new", "message": "New.", "request_id": "r"}}
    assert type(client_errors.error_of(response(418, unknown))) is client_errors.ServiceError


def test_an_answer_that_is_not_the_services_error_body_is_still_a_service_error() -> None:
    error = client_errors.error_of(
        response(502, b"<html>Bad gateway</html>", **{"x-request-id": "r"})
    )
    assert (error.code, error.status, error.request_id) == ("http_502", 502, "r")


def test_every_error_code_the_protocol_documents_has_its_exception_class() -> None:
    protocol = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    section = protocol.split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    codes = {code for row in rows for code in re.findall(r"`([a-z_]+)`", row.split("|")[1])}
    assert len(codes) > 20
    assert codes == set(client_errors.ERRORS) - {"invalid_body"}  # http.py's 400, undocumented
