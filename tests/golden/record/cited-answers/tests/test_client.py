"""The typed client (src/cited_answers/client.py) against the app in process, per program."""

from cited_answers.client import Client, Done, Prediction

from .conftest import ClientFactory
from .test_programs import (
    CITED_ANSWERS,
    CITED_OUTPUTS,
)


def test_the_client_calls_cited(client_with: ClientFactory) -> None:
    client = Client("http://testserver", http_client=client_with(CITED_ANSWERS))
    outputs = client.cited(
        question="sample text",
    )
    assert outputs.model_dump(mode="json", by_alias=True) == CITED_OUTPUTS


def test_the_client_streams_cited(client_with: ClientFactory) -> None:
    client = Client("http://testserver", http_client=client_with(CITED_ANSWERS))
    with client.cited.stream(
        question="sample text",
    ) as stream:
        events = list(stream)
    assert isinstance(events[-1], Done)
    assert isinstance(events[-2], Prediction)
    assert events[-2].outputs.model_dump(mode="json", by_alias=True) == CITED_OUTPUTS
