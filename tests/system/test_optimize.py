"""Optimize, then serve: ``dspy-forge optimize`` raises a score, and the served program shows it.

The spec is docs/walkthrough/repeat.yaml, the walkthrough of docs/optimize.md:
its right answer is its input, which the fake LM's ``needs-demo`` scenario gives
only when the prompt holds a few-shot demo. BootstrapFewShot adds demos from the
train examples, so the dev score goes from 0 to 1, the state is written beside
the spec, the spec's ``state:`` points at it, and a service generated after
streams the right answers on the same fake LM.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse
from typer.testing import CliRunner

from dspy_forge.cli import app
from dspy_forge.dev.fakelm import FakeLM
from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec

from .serving import served

Forge = Callable[..., tuple[int, str]]
WALKTHROUGH = Path(__file__).resolve().parents[2] / "docs" / "walkthrough" / "repeat.yaml"


@pytest.fixture
def lm_env(fake_lm: FakeLM, monkeypatch: pytest.MonkeyPatch) -> None:
    """The LM of every run: the fake LM in its needs-demo scenario."""
    monkeypatch.setenv("LM_MODEL", "openai/fake-model")
    monkeypatch.setenv("LM_API_BASE", fake_lm.scenario_base("needs-demo"))
    monkeypatch.setenv("LM_API_KEY", "fake")


def spec_copy(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(WALKTHROUGH, folder / "repeat.yaml"))


@pytest.fixture
def forge(capfd: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str]]:
    """Run dspy-forge; its exit code and all it printed, the project's subprocess included."""

    def run(*args: str) -> tuple[int, str]:
        capfd.readouterr()
        result = CliRunner().invoke(app, list(args))
        printed = capfd.readouterr().out + result.output
        return result.exit_code, " ".join(printed.split())

    return run


def digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.usefixtures("lm_env")
def test_bootstrap_raises_the_score_and_the_next_generate_serves_it(
    fake_lm: FakeLM, tmp_path: Path, forge: Forge
) -> None:
    spec = spec_copy(tmp_path / "spec")
    original = spec.read_text(encoding="utf-8")
    code, output = forge("optimize", str(spec), "-p", "repeat", "--optimizer", "bootstrap-few-shot")
    assert code == 0, output
    record = json.loads((spec.parent / "optimized" / "repeat.optimize.json").read_text())
    assert (record["before"], record["after"]) == (0.0, 1.0)
    assert record["optimizer"] == "bootstrap-few-shot"
    assert record["settings"] == {
        "max_bootstrapped_demos": 4,
        "max_labeled_demos": 16,
        "max_rounds": 1,
    }
    assert (record["train_examples"], record["dev_examples"]) == (6, 4)
    assert record["model"] == "openai/fake-model"
    state = spec.parent / "optimized" / "repeat.json"
    assert record["state_sha256"] == hashlib.sha256(state.read_bytes()).hexdigest()
    assert json.loads(state.read_bytes())["demos"], "the compiled program holds demos"
    assert "repeat bootstrap-few-shot exact_match(echo) 6 4 0.000 1.000 +1.000" in output
    # The spec gained one line, in place; its comments and order are kept.
    edited = spec.read_text(encoding="utf-8")
    assert edited == original.replace(
        "    module: Predict\n", "    module: Predict\n    state: optimized/repeat.json\n"
    )
    assert "programs.repeat.state is optimized/repeat.json now" in output

    project = generate(load_spec(spec), tmp_path / "project")
    assert (project / "src" / "repeat_service" / "state" / "repeat.json").is_file()
    with (
        served(
            project, "repeat_service", fake_lm, tmp_path / "serve.log", scenario="needs-demo"
        ) as service,
        httpx.Client(base_url=service.url, timeout=30) as client,
        connect_sse(client, "POST", "/v1/repeat/stream", json={"phrase": "red kite"}) as sse,
    ):
        events = [(event.event, json.loads(event.data)) for event in sse.iter_sse() if event.data]
    tokens = "".join(data["chunk"] for kind, data in events if kind == "token")
    assert tokens == "red kite"
    assert next(data for kind, data in events if kind == "prediction")["outputs"] == {
        "echo": "red kite"
    }


@pytest.mark.usefixtures("lm_env")
def test_a_worse_result_writes_nothing_and_the_spec_keeps_serving_what_it_did(
    tmp_path: Path, forge: Forge
) -> None:
    spec = spec_copy(tmp_path / "spec")
    code, output = forge("optimize", str(spec), "-p", "repeat", "--optimizer", "bootstrap-few-shot")
    assert code == 0, output
    before = digests(spec.parent)
    # No demos at all this time: the served program (with demos) scores 1, the new one 0.
    code, output = forge(
        "optimize",
        str(spec),
        "-p",
        "repeat",
        "--optimizer",
        "bootstrap-few-shot",
        "--max-bootstrapped-demos",
        "0",
        "--max-labeled-demos",
        "0",
    )
    assert code == 1
    assert "nothing written: the score fell" in output
    assert digests(spec.parent) == before


@pytest.mark.usefixtures("lm_env")
@pytest.mark.parametrize(
    ("optimizer", "budget"),
    [
        ("mipro-v2", ["--num-trials", "2", "--num-candidates", "2"]),
        ("gepa", ["--max-metric-calls", "12"]),
    ],
)
def test_mipro_and_gepa_run_at_their_smallest_budget(
    optimizer: str, budget: list[str], tmp_path: Path, forge: Forge
) -> None:
    spec = spec_copy(tmp_path / "spec")
    out = spec.parent / "states" / f"{optimizer}.json"
    code, output = forge(
        "optimize", str(spec), "-p", "repeat", "--optimizer", optimizer, "--out", str(out), *budget
    )
    assert code == 0, output
    record = json.loads(out.with_name(f"{optimizer}.optimize.json").read_text())
    assert record["optimizer"] == optimizer and record["settings"]["auto"] is None
    assert f"state: states/{optimizer}.json" in spec.read_text(encoding="utf-8")
    load_spec(spec)  # the state it points at passes the generator's checks


@pytest.mark.usefixtures("lm_env")
def test_refusals_run_nothing_and_change_nothing(
    fake_lm: FakeLM, tmp_path: Path, forge: Forge
) -> None:
    spec = spec_copy(tmp_path / "spec")
    text = spec.read_text(encoding="utf-8")
    start = fake_lm.stats()["requests"]
    # A file that optimize did not write is never replaced.
    mine = spec.parent / "optimized" / "repeat.json"
    mine.parent.mkdir()
    mine.write_text('{"mine": true}', encoding="utf-8")
    code, output = forge("optimize", str(spec), "-p", "repeat", "--optimizer", "gepa")
    assert code == 2 and "was not written by optimize" in output
    assert mine.read_text(encoding="utf-8") == '{"mine": true}'
    # A state outside the spec's folder cannot be named by the spec.
    code, output = forge(
        "optimize",
        str(spec),
        "-p",
        "repeat",
        "--optimizer",
        "gepa",
        "--out",
        str(tmp_path / "x.json"),
    )
    assert code == 2 and "outside the spec's folder" in output
    # No train examples: nothing to learn from.
    spec.write_text(text.split("    train:")[0] + "    examples:" + text.split("    examples:")[1])
    code, output = forge("optimize", str(spec), "-p", "repeat", "--optimizer", "gepa")
    assert code == 2 and "repeat has no train examples: add `train:`" in output
    # A broken train file: located errors, and nothing runs.
    (spec.parent / "train.jsonl").write_text('{"phrase": "a", "echo": "a"}\n{"phrase": 3}\n')
    spec.write_text(
        text.split("    train:")[0]
        + "    train: train.jsonl\n    examples:"
        + text.split("    examples:")[1]
    )
    code, output = forge("optimize", str(spec), "-p", "repeat", "--optimizer", "gepa")
    assert code == 1
    where = spec.parent / "train.jsonl"
    assert f"{where}:2 programs.repeat.train: field 'phrase'" in output
    assert f"{where}:2 programs.repeat.train: field 'echo' is missing" in output
    assert fake_lm.stats()["requests"] == start
    assert not os.path.exists(spec.parent / "optimized" / "repeat.optimize.json")
