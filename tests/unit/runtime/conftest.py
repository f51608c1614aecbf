"""The generated package's runtime, imported straight from the template.

``templates/src/{{service.package}}/runtime`` is imported as
``forge_service.runtime`` by ``dspy_forge.dev.template_runtime``, without
generating a project, so its tests take seconds.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from dspy_forge.dev.template_runtime import load_runtime

load_runtime()

from forge_service.runtime.metrics import Metrics  # noqa: E402

from .helpers import Receive  # noqa: E402


@pytest.fixture
def metrics() -> Metrics:
    """A fresh set of instruments, in a registry of its own."""
    return Metrics()


@pytest.fixture
def receive() -> Receive:
    """A request's receive whose client stays until ``receive.leave()``."""
    return Receive()


@pytest.fixture
def signals_restored() -> Iterator[None]:
    """Restore SIGTERM's and SIGINT's handlers after the test."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
