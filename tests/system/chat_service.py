"""The service the protocol tests talk to: one of each kind of program, served on the fake LM.

``qa`` streams its answer (Predict); ``thinker`` streams its reasoning and its
answer (ChainOfThought); ``convo`` takes a ``History`` and maps the chat
explicitly; ``agent`` calls a tool and reports it (ReAct); ``quiet`` streams
nothing, so its reply arrives whole with the prediction. Every protocol test
(tests/system/test_protocols_*.py) serves this project through
:func:`serving`, with its tool filled in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from dspy_forge.dev.devserver import RunningService
from dspy_forge.dev.fakelm.testing import FakeLM
from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec_text

from .serving import served

SPEC = """
version: 1
service: {name: chatty, title: Chatty}
lm: {model: openai/gpt-4o-mini, api_key_env: OPENAI_API_KEY}
tools:
  search:
    description: Search for information.
    args: {query: {type: str, description: What to look for.}}
programs:
  qa:
    module: Predict
    signature: "question -> answer"
    stream: [{field: answer}]
  thinker:
    module: ChainOfThought
    signature: "question -> answer"
    stream: [{field: reasoning}, {field: answer}]
  convo:
    module: Predict
    signature: "history: History, question -> answer"
    stream: [{field: answer}]
    chat: {message: question, history: history, content: answer}
  agent:
    module: ReAct
    signature: "question -> answer"
    tools: [search]
    stream: [{field: answer}]
    status: {tool_start: "Using {tool}", tool_end: "{tool} answered", lm_start: Thinking}
  quiet:
    module: Predict
    signature: "question, tone: str -> answer, confidence: float"
"""
PACKAGE = "chatty"
TOOL = '''"""The test's tool: it answers at once."""


async def search(query: str) -> str:
    """Search for information."""
    return f"results for {query}"
'''
KEY = "test-key-1"
# RUN_GRACE=0 so that a native stream's run also ends when its client leaves; the chat
# protocols stop their runs at a disconnect whatever the grace.
BASE_ENV = {"LM_NUM_RETRIES": "0", "DEBUG_STATS": "true"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = generate(load_spec_text(SPEC), tmp_path_factory.mktemp("chatty") / "project")
    (path / "src" / PACKAGE / "tools" / "search.py").write_text(TOOL)
    return path


def serving(project: Path, fake_lm: FakeLM, log_dir: Path) -> Callable[..., Any]:
    """Start the project in ``scenario`` with ``env``, as a context manager."""

    @contextmanager
    def start(scenario: str | None = None, **env: str) -> Iterator[RunningService]:
        log = log_dir / f"service-{scenario or 'default'}.log"
        settings = {**BASE_ENV, **env}
        with served(project, PACKAGE, fake_lm, log, scenario=scenario, env=settings) as service:
            yield service

    return start
