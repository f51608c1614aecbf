"""Every program over HTTP: the JSON endpoint, and the event stream's protocol."""

import json
from typing import Any

from httpx_sse import EventSource

from .conftest import ClientFactory


def read_events(client: Any, path: str, inputs: dict[str, Any]) -> list[tuple[str, int, Any]]:
    """POST to a stream endpoint; return (event, position, data) for every event.

    Each event's id is ``<run>-<position>``, the run being the X-Run-ID header's.
    """
    headers = {"X-Request-ID": "test-request-1"}
    with client.stream("POST", path, json=inputs, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-request-id"] == "test-request-1"
        run_id = response.headers["x-run-id"]
        events = []
        for sse in EventSource(response).iter_sse():
            run, _, position = sse.id.rpartition("-")
            assert run == run_id
            events.append((sse.event, int(position), json.loads(sse.data)))
    assert {data.pop("request_id") for _, _, data in events} == {"test-request-1"}
    assert {data.pop("run_id") for _, _, data in events} == {run_id}
    return events


def test_health(client_with: ClientFactory) -> None:
    assert client_with([]).get("/healthz").json() == {"status": "ok"}


CITED_INPUTS: dict[str, Any] = {
    "question": "sample text",
}
CITED_OUTPUTS: dict[str, Any] = {
    "answer": "sample text",
    "citations": [7],
}
# What the generated module's one ChainOfThought asks for; answer as your own module's
# predictors do, call by call, once you have written it.
CITED_ANSWERS = [{"reasoning": "Step by step.", **CITED_OUTPUTS}]


def test_cited_returns_its_outputs(client_with: ClientFactory) -> None:
    client = client_with(CITED_ANSWERS)
    response = client.post("/v1/cited", json=CITED_INPUTS)
    assert response.status_code == 200
    assert response.json() == CITED_OUTPUTS


def test_cited_streams_its_outputs(client_with: ClientFactory) -> None:
    client = client_with(CITED_ANSWERS)
    events = read_events(client, "/v1/cited/stream", CITED_INPUTS)
    assert [event_id for _, event_id, _ in events] == list(range(1, len(events) + 1))
    assert [event for event, _, _ in events][-2:] == ["prediction", "done"]
    assert events[-2][2] == {"outputs": CITED_OUTPUTS}
    tokens = [data for event, _, data in events if event == "token"]
    streamed = "".join(t["chunk"] for t in tokens if t["field"] == "answer")
    assert streamed == CITED_OUTPUTS["answer"]


def test_cited_rejects_a_bad_request(client_with: ClientFactory) -> None:
    response = client_with([]).post("/v1/cited", json={})
    assert response.status_code == 422
