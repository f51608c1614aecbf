"""The typed client (src/research_agent/client.py) against the app in process, per program."""

from research_agent.client import Client, Done, Prediction

from .conftest import ClientFactory
from .test_programs import (
    AGENT_ANSWERS,
    AGENT_OUTPUTS,
)


def test_the_client_calls_agent(client_with: ClientFactory) -> None:
    client = Client("http://testserver", http_client=client_with(AGENT_ANSWERS))
    outputs = client.agent(
        question="sample text",
    )
    assert outputs.model_dump(mode="json", by_alias=True) == AGENT_OUTPUTS


def test_the_client_streams_agent(client_with: ClientFactory) -> None:
    client = Client("http://testserver", http_client=client_with(AGENT_ANSWERS))
    with client.agent.stream(
        question="sample text",
    ) as stream:
        events = list(stream)
    assert isinstance(events[-1], Done)
    assert isinstance(events[-2], Prediction)
    assert events[-2].outputs.model_dump(mode="json", by_alias=True) == AGENT_OUTPUTS
