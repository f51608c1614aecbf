"""The typed client (src/toolbox/client.py) against the app in process, per program."""

from toolbox.client import Client, Done, Prediction

from .conftest import ClientFactory
from .test_programs import (
    GLOSSARY_ANSWERS,
    GLOSSARY_OUTPUTS,
    HEADLINE_ANSWERS,
    HEADLINE_OUTPUTS,
    PROFILE_ANSWERS,
    PROFILE_OUTPUTS,
    SENTIMENT_ANSWERS,
    SENTIMENT_OUTPUTS,
    TRANSLATE_ANSWERS,
    TRANSLATE_OUTPUTS,
)


def test_the_client_calls_profile(client_with: ClientFactory) -> None:
    client = Client("http://testserver", http_client=client_with(PROFILE_ANSWERS))
    outputs = client.profile(
        text="sample text",
        language="en",
        hints=["sample text"],
        weights={"key": 2.5},
        max_items=7,
        strict=True,
    )
    assert outputs.model_dump(mode="json", by_alias=True) == PROFILE_OUTPUTS


def test_the_client_streams_profile(client_with: ClientFactory) -> None:
    client = Client("http://testserver", http_client=client_with(PROFILE_ANSWERS))
    with client.profile.stream(
        text="sample text",
        language="en",
        hints=["sample text"],
        weights={"key": 2.5},
        max_items=7,
        strict=True,
    ) as stream:
        events = list(stream)
    assert isinstance(events[-1], Done)
    assert isinstance(events[-2], Prediction)
    assert events[-2].outputs.model_dump(mode="json", by_alias=True) == PROFILE_OUTPUTS


def test_the_client_calls_translate(client_with: ClientFactory) -> None:
    client = Client("http://testserver", http_client=client_with(TRANSLATE_ANSWERS))
    outputs = client.translate(
        text="sample text",
        target="sample text",
    )
    assert outputs.model_dump(mode="json", by_alias=True) == TRANSLATE_OUTPUTS


def test_the_client_streams_translate(client_with: ClientFactory) -> None:
    client = Client("http://testserver", http_client=client_with(TRANSLATE_ANSWERS))
    with client.translate.stream(
        text="sample text",
        target="sample text",
    ) as stream:
        events = list(stream)
    assert isinstance(events[-1], Done)
    assert isinstance(events[-2], Prediction)
    assert events[-2].outputs.model_dump(mode="json", by_alias=True) == TRANSLATE_OUTPUTS


def test_the_client_calls_sentiment(client_with: ClientFactory) -> None:
    client = Client("http://testserver", http_client=client_with(SENTIMENT_ANSWERS))
    outputs = client.sentiment(
        text="sample text",
    )
    assert outputs.model_dump(mode="json", by_alias=True) == SENTIMENT_OUTPUTS


def test_the_client_streams_sentiment(client_with: ClientFactory) -> None:
    client = Client("http://testserver", http_client=client_with(SENTIMENT_ANSWERS))
    with client.sentiment.stream(
        text="sample text",
    ) as stream:
        events = list(stream)
    assert isinstance(events[-1], Done)
    assert isinstance(events[-2], Prediction)
    assert events[-2].outputs.model_dump(mode="json", by_alias=True) == SENTIMENT_OUTPUTS


def test_the_client_calls_headline(client_with: ClientFactory) -> None:
    client = Client("http://testserver", http_client=client_with(HEADLINE_ANSWERS))
    outputs = client.headline(
        text="sample text",
    )
    assert outputs.model_dump(mode="json", by_alias=True) == HEADLINE_OUTPUTS


def test_the_client_streams_headline(client_with: ClientFactory) -> None:
    client = Client("http://testserver", http_client=client_with(HEADLINE_ANSWERS))
    with client.headline.stream(
        text="sample text",
    ) as stream:
        events = list(stream)
    assert isinstance(events[-1], Done)
    assert isinstance(events[-2], Prediction)
    assert events[-2].outputs.model_dump(mode="json", by_alias=True) == HEADLINE_OUTPUTS


def test_the_client_calls_glossary(client_with: ClientFactory) -> None:
    client = Client("http://testserver", http_client=client_with(GLOSSARY_ANSWERS))
    outputs = client.glossary(
        question="sample text",
    )
    assert outputs.model_dump(mode="json", by_alias=True) == GLOSSARY_OUTPUTS


def test_the_client_streams_glossary(client_with: ClientFactory) -> None:
    client = Client("http://testserver", http_client=client_with(GLOSSARY_ANSWERS))
    with client.glossary.stream(
        question="sample text",
    ) as stream:
        events = list(stream)
    assert isinstance(events[-1], Done)
    assert isinstance(events[-2], Prediction)
    assert events[-2].outputs.model_dump(mode="json", by_alias=True) == GLOSSARY_OUTPUTS
