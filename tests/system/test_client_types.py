"""The generated typed client type-checks a caller's program, and refuses a wrong argument.

mypy (``--strict``) runs over two small programs against a generated project's
``src``: one that uses every method (call, stream, batch, sync and async),
which must check clean, client modules included; and one that passes an
``int`` where the spec says ``str``, which mypy must reject naming the field.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec_text

SPEC = """
version: 1
service: {name: typed, title: Typed}
lm: {model: openai/gpt-4o-mini, api_key_env: OPENAI_API_KEY}
programs:
  qa:
    module: ChainOfThought
    signature: >-
      question, config: str | None, tags: list[str] | None, picture: Image | None
      -> answer, score: float
    stream: [{field: answer}]
"""

GOOD = """
import asyncio

from typed.client import (
    AsyncClient,
    Client,
    Error,
    Prediction,
    QaRequest,
    QaResponse,
    ServiceError,
    Token,
    TooManyRequests,
)


def ask(client: Client) -> str:
    response: QaResponse = client.with_options(request_id="r-1").qa(question="Why?", config="x")
    score: float = response.score
    text = ""
    with client.qa.stream(question="Why?", tags=["a"], picture={"url": "data:,"}) as stream:
        for event in stream:
            if isinstance(event, Token):
                text += event.chunk
            elif isinstance(event, Prediction):
                text = event.outputs.answer + event.outputs.reasoning
            elif isinstance(event, Error):
                raise event.exception()
    for item in client.qa.batch([QaRequest(question="a"), QaRequest(question="b", config="c")]):
        if isinstance(item, ServiceError):
            print(item.code, item.request_id)
        else:
            text += item.answer
    return f"{text}{score}"


async def ask_async(client: AsyncClient) -> str:
    try:
        response = await client.qa(question="Why?")
    except TooManyRequests as error:
        return str(error.retry_after)
    async with client.qa.stream(question="Why?") as stream:
        async for event in stream:
            if isinstance(event, Prediction):
                return event.outputs.answer
    results = await client.qa.batch([QaRequest(question="a")])
    return response.answer + str(len(results))


print(asyncio.run(ask_async(AsyncClient())), ask(Client("http://localhost:8000", api_key="k")))
"""

BAD = """
from typed.client import Client

Client().qa(question=3)
Client().qa.stream(question="Why?", tags="a")
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(load_spec_text(SPEC), tmp_path_factory.mktemp("typed") / "project")


def mypy(project: Path, folder: Path, *files: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(folder / ".cache"), *files],
        cwd=folder,
        env={"MYPYPATH": str(project / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_program_using_every_client_method_type_checks_and_a_wrong_type_is_refused(
    project: Path, tmp_path: Path
) -> None:
    (tmp_path / "good.py").write_text(GOOD, encoding="utf-8")
    (tmp_path / "bad.py").write_text(BAD, encoding="utf-8")
    checked = mypy(project, tmp_path, "good.py", "bad.py")
    errors = [line for line in checked.stdout.splitlines() if ": error:" in line]
    assert all(line.startswith("bad.py:") for line in errors), checked.stdout
    assert any(
        'Argument "question"' in line and '"int"; expected "str"' in line for line in errors
    ), checked.stdout
    assert any(
        'Argument "tags"' in line and 'expected "list[str] | None"' in line for line in errors
    ), checked.stdout
    assert len(errors) == 2, checked.stdout
