"""One fake LM server for the whole session, and DSPy LMs pointed at it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from dspy_forge.dev.fakelm import FakeLM, running_fake_lm

# DSPy refreshes its model-metadata map from the internet on first use; tests stay on loopback.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(scope="session")
def fake_lm() -> Iterator[FakeLM]:
    with running_fake_lm() as fake:
        yield fake
