"""The command line: exit codes, located errors, and nothing written on failure."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from dspy_forge.cli import app
from dspy_forge.spec.loader import load_spec
from tests.conftest import SPECS

runner = CliRunner()


def test_validate_lists_programs() -> None:
    result = runner.invoke(app, ["validate", str(SPECS / "toolbox.yaml")])
    assert result.exit_code == 0, result.output
    for program in ("profile", "translate", "sentiment", "glossary"):
        assert program in result.output


def test_generate_writes_a_project(tmp_path: Path) -> None:
    out = tmp_path / "svc"
    result = runner.invoke(app, ["generate", str(SPECS / "qa.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "src" / "qa_service" / "main.py").is_file()
    assert "uvicorn qa_service.main:app" in result.output


def test_bad_spec_gets_located_errors_and_nothing_is_written(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        (SPECS / "qa.yaml")
        .read_text()
        .replace("module: ChainOfThought", "module: ChainOfThougt")
        .replace("cache: false", "cache: false\n  tempreature: 0.5"),
        encoding="utf-8",
    )
    out = tmp_path / "svc"
    result = runner.invoke(app, ["generate", str(spec), "--out", str(out)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert not out.exists()
    assert "2 problems" in result.output
    assert (
        f"{spec}:13:3 lm.tempreature: unknown key 'tempreature'; did you mean 'temperature'?"
        in (" ".join(result.output.split()))
    )
    assert (
        f"{spec}:27:5 programs.qa.module: expected one of 'Predict', 'ChainOfThought', "
        "'ReAct', 'BestOfN' or 'Custom', found 'ChainOfThougt'; did you mean 'ChainOfThought'?"
    ) in " ".join(result.output.split())


def test_generate_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    out = tmp_path / "svc"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["generate", str(SPECS / "qa.yaml"), "--out", str(out)])
    assert result.exit_code == 1
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_missing_spec_file_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "no such file" in result.output
    assert "Traceback" not in result.output


def test_init_writes_a_valid_starter_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "service.yaml"
    assert runner.invoke(app, ["init", str(path)]).exit_code == 0
    assert load_spec(path).model.programs[0].name == "qa"
    before = path.read_text()
    assert runner.invoke(app, ["init", str(path)]).exit_code == 1
    assert path.read_text() == before


def test_schema_is_json_schema_of_the_spec() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["$schema"].endswith("2020-12/schema")
    assert {"version", "service", "lm", "programs"} <= set(schema["required"])
