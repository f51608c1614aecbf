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


AGENT_INPUTS: dict[str, Any] = {
    "question": "sample text",
}
AGENT_OUTPUTS: dict[str, Any] = {
    "reasoning": "sample text",
    "answer": "sample text",
}
AGENT_ANSWERS = [
    {"next_thought": "I can answer now.", "next_tool_name": "finish", "next_tool_args": {}},
    AGENT_OUTPUTS,
]


def test_agent_returns_its_outputs(client_with: ClientFactory) -> None:
    client = client_with(AGENT_ANSWERS)
    response = client.post("/v1/agent", json=AGENT_INPUTS)
    assert response.status_code == 200
    assert response.json() == AGENT_OUTPUTS


def test_agent_streams_its_outputs(client_with: ClientFactory) -> None:
    client = client_with(AGENT_ANSWERS)
    events = read_events(client, "/v1/agent/stream", AGENT_INPUTS)
    assert [event_id for _, event_id, _ in events] == list(range(1, len(events) + 1))
    assert [event for event, _, _ in events][-2:] == ["prediction", "done"]
    assert events[-2][2] == {"outputs": AGENT_OUTPUTS}


def test_agent_rejects_a_bad_request(client_with: ClientFactory) -> None:
    response = client_with([]).post("/v1/agent", json={})
    assert response.status_code == 422
