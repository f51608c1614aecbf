"""A program saved with ``program.save()`` is what the generated service runs.

An optimizer's output is mostly few-shot demos and rewritten instructions; the
test saves both, generates a service that names the file as the program's state,
and checks that the prompt the LM receives carries them and that /readyz says
the state was loaded.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from typing import Any

import dspy
import pytest
from dspy.utils.dummies import DummyLM
from fastapi.testclient import TestClient

from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec

SPEC = """
version: 1
service: {name: tuned}
lm: {model: openai/gpt-4o-mini}
programs:
  plain:
    module: Predict
    signature: "question -> answer"
  tuned:
    module: Predict
    signature: "question -> answer"
    state: tuned.json
"""
DEMO_QUESTION = "Which planet has the most moons (demo 7731)?"
DEMO_ANSWER = "Saturn, per the saved demo 7731."
TUNED_INSTRUCTIONS = "Answer like an astronomer, citing demo numbers."


@pytest.fixture(scope="module")
def app_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The generated ``tuned.app`` module, imported in this process."""
    spec_dir = tmp_path_factory.mktemp("spec")
    program = dspy.Predict("question -> answer")
    program.demos = [dspy.Example(question=DEMO_QUESTION, answer=DEMO_ANSWER)]
    program.signature = program.signature.with_instructions(TUNED_INSTRUCTIONS)
    program.save(str(spec_dir / "tuned.json"))  # JSON state, as an optimizer leaves it

    spec = spec_dir / "tuned.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    project = generate(load_spec(spec), spec_dir / "project")
    assert (project / "src" / "tuned" / "state" / "tuned.json").is_file()
    sys.path.insert(0, str(project / "src"))
    try:
        yield importlib.import_module("tuned.app")
    finally:
        sys.path.remove(str(project / "src"))
        for name in [name for name in sys.modules if name.split(".")[0] == "tuned"]:
            del sys.modules[name]


def prompt_of(app_module: Any, program: str) -> str:
    lm = DummyLM([{"answer": "Jupiter."}])
    settings = app_module.Settings(_env_file=None)
    with TestClient(app_module.create_app(settings, lm=lm)) as client:
        response = client.post(f"/v1/{program}", json={"question": "Which planet is largest?"})
        assert response.status_code == 200, response.text
    return "\n".join(str(message["content"]) for message in lm.history[-1]["messages"])


def test_saved_demos_and_instructions_reach_the_prompt(app_module: Any) -> None:
    tuned = prompt_of(app_module, "tuned")
    assert DEMO_QUESTION in tuned and DEMO_ANSWER in tuned
    assert TUNED_INSTRUCTIONS in tuned
    plain = prompt_of(app_module, "plain")  # same signature, no state: no demos
    assert DEMO_QUESTION not in plain and TUNED_INSTRUCTIONS not in plain


def test_readyz_reports_the_loaded_state(app_module: Any) -> None:
    settings = app_module.Settings(_env_file=None)
    with TestClient(app_module.create_app(settings, lm=DummyLM([]))) as client:
        programs = client.get("/readyz").json()["programs"]
    assert programs["tuned"]["state"] == "tuned.json"
    assert programs["plain"]["state"] is None
