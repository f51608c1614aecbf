"""Evaluation end to end: a generated project scores its programs on the fake LM.

The fake LM's ``echo`` scenario answers each str field with the question, so the
scores are known in advance: an example whose answer is its question scores 1,
any other 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import dspy_forge
from dspy_forge.cli import app
from dspy_forge.dev.fakelm import FakeLM
from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec

ROWS = [
    {"question": "alpha", "answer": "alpha"},
    {"question": "beta", "answer": "beta"},
    {"question": "gamma", "answer": "something else"},
    {"question": "delta", "answer": "not delta"},
]
SPEC = """version: 1
service: {name: eval-demo}
lm: {model: openai/gpt-4o-mini, api_key_env: OPENAI_API_KEY}
programs:
  loose:
    module: Predict
    signature: "question -> answer"
    examples: rows.jsonl
    metric: {name: exact_match, field: answer}
    threshold: 0.5
  strict:
    module: ChainOfThought
    signature: "question -> answer"
    examples: rows.jsonl
    metric: {name: f1, field: answer}
    threshold: 0.75
  mine:
    module: Predict
    signature: "question -> answer"
    examples:
      - {question: same, answer: same}
      - {question: one, answer: two}
    metric: {function: "metrics:score"}
"""


def write_spec(folder: Path, rows: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = rows if rows is not None else "".join(json.dumps(row) + "\n" for row in ROWS)
    (folder / "rows.jsonl").write_text(text, encoding="utf-8")
    spec = folder / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    return spec


def lm_env(fake_lm: FakeLM) -> dict[str, str]:
    return {
        **os.environ,
        "LM_MODEL": "openai/fake-model",
        "LM_API_BASE": fake_lm.scenario_base("echo"),
        "LM_API_KEY": "fake",
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("eval")
    return generate(load_spec(write_spec(folder / "spec")), folder / "project")


def run_eval(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**env, "PYTHONPATH": str(project / "src")}
    command = [sys.executable, "-m", "eval_demo", "eval", *args]
    return subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_project_ships_its_examples_and_a_metrics_stub(project: Path) -> None:
    package = project / "src" / "eval_demo"
    shipped = (package / "examples" / "loose.jsonl").read_text(encoding="utf-8")
    assert [json.loads(line) for line in shipped.splitlines()] == ROWS
    assert (package / "examples" / "mine.jsonl").is_file()
    assert "def score(" in (package / "metrics.py").read_text(encoding="utf-8")
    for check in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *check, "--no-cache"],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout


def test_eval_scores_every_program_and_fails_under_a_threshold(
    project: Path, fake_lm: FakeLM, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = run_eval(project, lm_env(fake_lm), "--report", str(report), "--threads", "2")
    assert result.returncode == 1, result.stdout + result.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["passed"] is False
    scores = {item["program"]: item for item in data["programs"]}
    assert scores["loose"]["score"] == 0.5 and scores["loose"]["passed"] is True
    assert scores["loose"]["metric"] == "exact_match(answer)"
    # F1 gives "not delta" for "delta" 2/3 (precision 1, recall 1/2): (1 + 1 + 0 + 2/3) / 4.
    assert scores["strict"]["score"] == 0.6667 and scores["strict"]["passed"] is False
    assert scores["mine"]["score"] == 0.5 and scores["mine"]["threshold"] is None
    assert [row["score"] for row in scores["loose"]["rows"]] == [1.0, 1.0, 0.0, 0.0]
    third = scores["loose"]["rows"][2]
    assert third["inputs"] == {"question": "gamma"}
    assert third["expected"] == {"answer": "something else"}
    assert third["predicted"] == {"answer": "gamma"}
    table = result.stdout
    lines = {line.split()[0]: line.split() for line in table.splitlines()[:4]}
    assert lines["strict"] == ["strict", "f1(answer)", "4", "0.667", "0.750", "FAIL"]
    assert lines["loose"][-1] == "pass"
    assert '#2 score 0.000: expected {"answer": "something else"}, got {"answer": "gamma"}' in table


def test_eval_of_one_program_passing_its_threshold_exits_zero(
    project: Path, fake_lm: FakeLM, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    result = run_eval(project, lm_env(fake_lm), "--program", "loose", "--report", str(report))
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["passed"] is True
    assert [item["program"] for item in data["programs"]] == ["loose"]


def test_eval_refuses_an_unknown_program_and_an_lm_without_key(
    project: Path, fake_lm: FakeLM
) -> None:
    result = run_eval(project, lm_env(fake_lm), "--program", "nope")
    assert result.returncode == 2 and "no examples for nope" in result.stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LM_", "OPENAI_"))}
    result = run_eval(project, env)
    assert result.returncode == 2 and "not configured" in result.stdout


def test_serving_without_a_command_still_parses(project: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    result = subprocess.run(
        [sys.executable, "-m", "eval_demo", "--help"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and "{serve,eval,optimize}" in result.stdout


def test_forge_eval_runs_in_a_temporary_project_and_in_a_given_one(
    project: Path, fake_lm: FakeLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in lm_env(fake_lm).items():
        monkeypatch.setenv(key, value)
    spec = write_spec(tmp_path / "spec")
    report = tmp_path / "fresh.json"
    result = CliRunner().invoke(
        app, ["eval", str(spec), "--program", "loose", "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["programs"][0]["score"] == 0.5
    report = tmp_path / "given.json"
    args = ["eval", str(spec), "--project", str(project), "-p", "strict", "--report", str(report)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert json.loads(report.read_text())["programs"][0]["program"] == "strict"


def test_forge_eval_on_a_broken_examples_file_shows_located_errors_and_runs_nothing(
    fake_lm: FakeLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in lm_env(fake_lm).items():
        monkeypatch.setenv(key, value)
    rows = '{"question": "a", "answer": "a"}\n{"question": 1, "answer": "b"}\n{"answer": "c"}\n'
    spec = write_spec(tmp_path / "spec", rows)
    before = fake_lm.stats()
    report = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["eval", str(spec), "--report", str(report)])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    where = tmp_path / "spec" / "rows.jsonl"
    assert f"{where}:2 programs.loose.examples: field 'question'" in text
    assert f"{where}:3 programs.loose.examples: field 'question' is missing" in text
    assert f"{where}:2 programs.strict.examples" in text  # both programs read the file
    assert not report.exists()
    assert fake_lm.stats() == before


def git(folder: Path, *args: str) -> None:
    identity = ["-c", "user.email=test@example.com", "-c", "user.name=test"]
    subprocess.run(["git", *identity, *args], cwd=folder, check=True, capture_output=True)


def test_regenerating_keeps_the_users_metrics_and_refreshes_the_examples(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec")
    out = tmp_path / "project"
    dspy_forge.generate(load_spec(spec), out)
    git(out, "init", "-q")
    git(out, "add", "-A")
    git(out, "commit", "-qm", "generated")
    metrics = out / "src" / "eval_demo" / "metrics.py"
    mine = metrics.read_text(encoding="utf-8") + "\n\ndef mine() -> float:\n    return 1.0\n"
    metrics.write_text(mine, encoding="utf-8")
    git(out, "commit", "-qam", "my metric")
    (tmp_path / "spec" / "rows.jsonl").write_text(json.dumps(ROWS[0]) + "\n", encoding="utf-8")
    # A metric the spec names now, which the user's (never rewritten) file lacks: said so.
    spec.write_text(SPEC.replace('"metrics:score"', '"metrics:graded"'), encoding="utf-8")
    plan = dspy_forge.generate(load_spec(spec), out)
    assert metrics.read_text(encoding="utf-8") == mine
    assert not isinstance(plan, Path)
    assert any(
        "src/eval_demo/metrics.py has no graded, which evals.py uses as a metric" in notice
        and "def graded(example: dspy.Example" in notice
        for notice in plan.notices
    ), plan.notices
    assert not any("has no score" in notice for notice in plan.notices)
    shipped = (out / "src" / "eval_demo" / "examples" / "loose.jsonl").read_text(encoding="utf-8")
    assert shipped == json.dumps(ROWS[0]) + "\n"
