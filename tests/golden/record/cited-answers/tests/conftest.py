"""Fixtures: the app on DSPy's DummyLM, so the tests need no network and no key."""

from collections.abc import Callable
from typing import Any

import pytest
from dspy.utils.dummies import DummyLM
from fastapi.testclient import TestClient

from cited_answers.app import create_app
from cited_answers.settings import Settings

ClientFactory = Callable[[list[dict[str, Any]]], TestClient]


@pytest.fixture
def client_with() -> ClientFactory:
    """A test client whose programs answer, call by call, with ``answers``."""

    def make(answers: list[dict[str, Any]]) -> TestClient:
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        return TestClient(create_app(settings, lm=DummyLM(answers)))

    return make
