"""A BestOfN program as a user serves it: rewards.py filled in, served on the fake LM.

The project is generated with ``module: BestOfN`` over a ChainOfThought; the
test fills in the ``rewards.py`` stub as a user would (a question starting with
"easy" is accepted at once, any other never), then serves it under uvicorn.
Each attempt is one LM call, so the fake LM counts them: all three when no
attempt reaches the threshold, one when the first does. The listened answer is
not streamed live (an attempt's tokens are not the answer yet): it arrives as
one token chunk equal to the prediction's value. Status events show each
attempt. ``python -m <package> eval`` scores the program through DSPy's
synchronous path (``forward``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

import dspy_forge
from dspy_forge.dev.fakelm.testing import FakeLM
from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec_text
from tests.system.serving import served

PACKAGE = "best_of_demo"
SPEC = """\
version: 1
service: {name: best-of-demo}
lm: {model: openai/gpt-4o-mini, api_key_env: OPENAI_API_KEY}
programs:
  pick:
    module: BestOfN
    signature: "question -> answer"
    best_of: {module: ChainOfThought, attempts: 3, reward: "rewards:accepted", threshold: 1.0}
    stream: [{field: answer}]
    status_modules: all
    status:
      lm_start: "Asking {model}"
      lm_end: "{model} answered"
      module_start: "Starting {module}"
    examples:
      - {question: "easy one", answer: "easy one"}
      - {question: "hard one", answer: "something else"}
    metric: {name: exact_match, field: answer}
"""
# The user's rewards.py, replacing the generated stub.
REWARDS = '''\
"""Our rewards."""

from typing import Any

import dspy


def accepted(args: dict[str, Any], prediction: dspy.Prediction) -> float:
    """An easy question's answer is accepted at once; any other never is."""
    return 1.0 if args["question"].startswith("easy") and prediction.answer else 0.0
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("best-of")
    project = generate(load_spec_text(SPEC, base_dir=where), where / "project")
    rewards = project / "src" / PACKAGE / "rewards.py"
    assert "def accepted(args: dict[str, Any], prediction: dspy.Prediction)" in rewards.read_text(
        encoding="utf-8"
    )
    rewards.write_text(REWARDS, encoding="utf-8")
    return project


async def _stream(url: str, question: str) -> list[tuple[str, dict[str, Any]]]:
    async with (
        httpx.AsyncClient(base_url=url, timeout=60) as client,
        aconnect_sse(client, "POST", "/v1/pick/stream", json={"question": question}) as source,
    ):
        assert source.response.status_code == 200
        return [(sse.event, json.loads(sse.data)) async for sse in source.aiter_sse()]


def _asked(fake_lm: FakeLM, url: str, question: str) -> tuple[int, list[tuple[str, Any]]]:
    """The LM calls one streamed request made, and its events."""
    before = fake_lm.stats()["requests"]
    found = asyncio.run(_stream(url, question))
    return fake_lm.stats()["requests"] - before, found


def test_attempts_are_lm_calls_until_one_reaches_the_threshold(
    project: Path, fake_lm: FakeLM, tmp_path: Path
) -> None:
    with served(project, PACKAGE, fake_lm, tmp_path / "service.log") as service:
        ready = httpx.get(f"{service.url}/readyz").json()
        hard_calls, hard = _asked(fake_lm, service.url, "hard question")
        easy_calls, easy = _asked(fake_lm, service.url, "easy question")
    assert ready["programs"]["pick"]["predictors"] == ["module.predict"]
    assert (hard_calls, easy_calls) == (3, 1)
    for found, attempts in ((hard, 3), (easy, 1)):
        kinds = [event for event, _ in found]
        assert kinds[-2:] == ["prediction", "done"] and "error" not in kinds
        # Not live: the answer arrives as one chunk, exactly the chosen prediction's.
        tokens = [
            (data["predictor"], data["field"], data["chunk"])
            for event, data in found
            if event == "token"
        ]
        answer = found[-2][1]["outputs"]["answer"]
        assert tokens == [("module.predict", "answer", answer)]
        assert answer and kinds.index("token") == kinds.index("prediction") - 1
        said = [data["message"] for event, data in found if event == "status"]
        attempt = [
            "Starting ChainOfThought",
            "Starting Predict",
            "Asking openai/fake-model",
            "openai/fake-model answered",
        ]
        assert said == ["Starting BestOfN", *attempt * attempts]


def test_the_stub_and_eval_work_on_it(project: Path, fake_lm: FakeLM, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(project / "src"),
        "LM_MODEL": "openai/fake-model",
        "LM_API_BASE": fake_lm.scenario_base("echo"),
        "LM_API_KEY": "fake",
    }
    report = tmp_path / "report.json"
    before = fake_lm.stats()["requests"]
    result = subprocess.run(
        [sys.executable, "-m", PACKAGE, "eval", "--report", str(report)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (program,) = json.loads(report.read_text(encoding="utf-8"))["programs"]
    # The echo scenario answers with the question: the easy one is right after one attempt,
    # the hard one wrong after three.
    assert program["score"] == 0.5
    assert [row["predicted"] for row in program["rows"]] == [
        {"answer": "easy one"},
        {"answer": "hard one"},
    ]
    assert fake_lm.stats()["requests"] - before == 4


def test_regenerating_keeps_the_users_rewards_and_names_a_missing_one(tmp_path: Path) -> None:
    out = tmp_path / "project"
    generate(load_spec_text(SPEC, base_dir=tmp_path), out)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "generated"]):
        _git(out, *args)
    rewards = out / "src" / PACKAGE / "rewards.py"
    rewards.write_text(REWARDS, encoding="utf-8")
    _git(out, "commit", "-qam", "our rewards")
    changed = SPEC.replace('"rewards:accepted"', '"rewards:graded"')
    plan = dspy_forge.generate(load_spec_text(changed, base_dir=tmp_path), out)
    assert rewards.read_text(encoding="utf-8") == REWARDS
    assert not isinstance(plan, Path)
    assert any(
        f"src/{PACKAGE}/rewards.py has no graded, which programs.py uses as a reward" in notice
        for notice in plan.notices
    ), plan.notices


def _git(folder: Path, *args: str) -> None:
    identity = ["-c", "user.email=test@example.com", "-c", "user.name=test"]
    subprocess.run(["git", *identity, *args], cwd=folder, check=True, capture_output=True)
