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


PROFILE_INPUTS: dict[str, Any] = {
    "text": "sample text",
    "language": "en",
    "hints": ["sample text"],
    "weights": {"key": 2.5},
    "max_items": 7,
    "strict": True,
}
PROFILE_OUTPUTS: dict[str, Any] = {
    "reasoning": "sample text",
    "summary": "sample text",
    "category": "news",
    "score": 2.5,
    "word_count": 7,
    "is_question": True,
    "entities": ["sample text"],
    "counts": {"key": 7},
    "nested": [{"key": [7]}],
    "note": "sample text",
}
PROFILE_ANSWERS = [PROFILE_OUTPUTS]


def test_profile_returns_its_outputs(client_with: ClientFactory) -> None:
    client = client_with(PROFILE_ANSWERS)
    response = client.post("/v1/profile", json=PROFILE_INPUTS)
    assert response.status_code == 200
    assert response.json() == PROFILE_OUTPUTS


def test_profile_streams_its_outputs(client_with: ClientFactory) -> None:
    client = client_with(PROFILE_ANSWERS)
    events = read_events(client, "/v1/profile/stream", PROFILE_INPUTS)
    assert [event_id for _, event_id, _ in events] == list(range(1, len(events) + 1))
    assert [event for event, _, _ in events][-2:] == ["prediction", "done"]
    assert events[-2][2] == {"outputs": PROFILE_OUTPUTS}
    tokens = [data for event, _, data in events if event == "token"]
    streamed = "".join(t["chunk"] for t in tokens if t["field"] == "reasoning")
    assert streamed == PROFILE_OUTPUTS["reasoning"]
    tokens = [data for event, _, data in events if event == "token"]
    streamed = "".join(t["chunk"] for t in tokens if t["field"] == "summary")
    assert streamed == PROFILE_OUTPUTS["summary"]


def test_profile_rejects_a_bad_request(client_with: ClientFactory) -> None:
    response = client_with([]).post("/v1/profile", json={})
    assert response.status_code == 422


TRANSLATE_INPUTS: dict[str, Any] = {
    "text": "sample text",
    "target": "sample text",
}
TRANSLATE_OUTPUTS: dict[str, Any] = {
    "translation": "sample text",
}
TRANSLATE_ANSWERS = [TRANSLATE_OUTPUTS]


def test_translate_returns_its_outputs(client_with: ClientFactory) -> None:
    client = client_with(TRANSLATE_ANSWERS)
    response = client.post("/v1/translate", json=TRANSLATE_INPUTS)
    assert response.status_code == 200
    assert response.json() == TRANSLATE_OUTPUTS


def test_translate_streams_its_outputs(client_with: ClientFactory) -> None:
    client = client_with(TRANSLATE_ANSWERS)
    events = read_events(client, "/v1/translate/stream", TRANSLATE_INPUTS)
    assert [event_id for _, event_id, _ in events] == list(range(1, len(events) + 1))
    assert [event for event, _, _ in events][-2:] == ["prediction", "done"]
    assert events[-2][2] == {"outputs": TRANSLATE_OUTPUTS}
    tokens = [data for event, _, data in events if event == "token"]
    streamed = "".join(t["chunk"] for t in tokens if t["field"] == "translation")
    assert streamed == TRANSLATE_OUTPUTS["translation"]


def test_translate_rejects_a_bad_request(client_with: ClientFactory) -> None:
    response = client_with([]).post("/v1/translate", json={})
    assert response.status_code == 422


SENTIMENT_INPUTS: dict[str, Any] = {
    "text": "sample text",
}
SENTIMENT_OUTPUTS: dict[str, Any] = {
    "sentiment": "positive",
    "confidence": 2.5,
}
SENTIMENT_ANSWERS = [SENTIMENT_OUTPUTS]


def test_sentiment_returns_its_outputs(client_with: ClientFactory) -> None:
    client = client_with(SENTIMENT_ANSWERS)
    response = client.post("/v1/sentiment", json=SENTIMENT_INPUTS)
    assert response.status_code == 200
    assert response.json() == SENTIMENT_OUTPUTS


def test_sentiment_streams_its_outputs(client_with: ClientFactory) -> None:
    client = client_with(SENTIMENT_ANSWERS)
    events = read_events(client, "/v1/sentiment/stream", SENTIMENT_INPUTS)
    assert [event_id for _, event_id, _ in events] == list(range(1, len(events) + 1))
    assert [event for event, _, _ in events][-2:] == ["prediction", "done"]
    assert events[-2][2] == {"outputs": SENTIMENT_OUTPUTS}


def test_sentiment_rejects_a_bad_request(client_with: ClientFactory) -> None:
    response = client_with([]).post("/v1/sentiment", json={})
    assert response.status_code == 422


HEADLINE_INPUTS: dict[str, Any] = {
    "text": "sample text",
}
HEADLINE_OUTPUTS: dict[str, Any] = {
    "reasoning": "sample text",
    "headline": "sample text",
}
HEADLINE_ANSWERS = [HEADLINE_OUTPUTS]


def test_headline_returns_its_outputs(client_with: ClientFactory) -> None:
    client = client_with(HEADLINE_ANSWERS)
    response = client.post("/v1/headline", json=HEADLINE_INPUTS)
    assert response.status_code == 200
    assert response.json() == HEADLINE_OUTPUTS


def test_headline_streams_its_outputs(client_with: ClientFactory) -> None:
    client = client_with(HEADLINE_ANSWERS)
    events = read_events(client, "/v1/headline/stream", HEADLINE_INPUTS)
    assert [event_id for _, event_id, _ in events] == list(range(1, len(events) + 1))
    assert [event for event, _, _ in events][-2:] == ["prediction", "done"]
    assert events[-2][2] == {"outputs": HEADLINE_OUTPUTS}
    tokens = [data for event, _, data in events if event == "token"]
    streamed = "".join(t["chunk"] for t in tokens if t["field"] == "headline")
    assert streamed == HEADLINE_OUTPUTS["headline"]


def test_headline_rejects_a_bad_request(client_with: ClientFactory) -> None:
    response = client_with([]).post("/v1/headline", json={})
    assert response.status_code == 422


GLOSSARY_INPUTS: dict[str, Any] = {
    "question": "sample text",
}
GLOSSARY_OUTPUTS: dict[str, Any] = {
    "reasoning": "sample text",
    "answer": "sample text",
    "sources": ["sample text"],
}
GLOSSARY_ANSWERS = [
    {"next_thought": "I can answer now.", "next_tool_name": "finish", "next_tool_args": {}},
    GLOSSARY_OUTPUTS,
]


def test_glossary_returns_its_outputs(client_with: ClientFactory) -> None:
    client = client_with(GLOSSARY_ANSWERS)
    response = client.post("/v1/glossary", json=GLOSSARY_INPUTS)
    assert response.status_code == 200
    assert response.json() == GLOSSARY_OUTPUTS


def test_glossary_streams_its_outputs(client_with: ClientFactory) -> None:
    client = client_with(GLOSSARY_ANSWERS)
    events = read_events(client, "/v1/glossary/stream", GLOSSARY_INPUTS)
    assert [event_id for _, event_id, _ in events] == list(range(1, len(events) + 1))
    assert [event for event, _, _ in events][-2:] == ["prediction", "done"]
    assert events[-2][2] == {"outputs": GLOSSARY_OUTPUTS}
    tokens = [data for event, _, data in events if event == "token"]
    streamed = "".join(t["chunk"] for t in tokens if t["field"] == "answer")
    assert streamed == GLOSSARY_OUTPUTS["answer"]


def test_glossary_rejects_a_bad_request(client_with: ClientFactory) -> None:
    response = client_with([]).post("/v1/glossary", json={})
    assert response.status_code == 422
