"""The typed client (src/qa_service/client.py) against the app in process, per program."""

from qa_service.client import Client, Done, Prediction

from .conftest import ClientFactory
from .test_programs import (
    QA_ANSWERS,
    QA_OUTPUTS,
)


def test_the_client_calls_qa(client_with: ClientFactory) -> None:
    client = Client("http://testserver", http_client=client_with(QA_ANSWERS))
    outputs = client.qa(
        question="sample text",
    )
    assert outputs.model_dump(mode="json", by_alias=True) == QA_OUTPUTS


def test_the_client_streams_qa(client_with: ClientFactory) -> None:
    client = Client("http://testserver", http_client=client_with(QA_ANSWERS))
    with client.qa.stream(
        question="sample text",
    ) as stream:
        events = list(stream)
    assert isinstance(events[-1], Done)
    assert isinstance(events[-2], Prediction)
    assert events[-2].outputs.model_dump(mode="json", by_alias=True) == QA_OUTPUTS
