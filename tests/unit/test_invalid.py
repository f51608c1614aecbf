"""One invalid spec per kind of error, with what the command line prints for it.

Each file under tests/invalid/ is named after the error it holds; its `validate`
output is pinned in tests/unit/__snapshots__/test_invalid.ambr, so a change to any
message shows as a reviewed diff. Update after reviewing with:
  pytest tests/unit/test_invalid.py --snapshot-update
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion
from typer.testing import CliRunner

from dspy_forge.cli import app
from dspy_forge.spec.errors import SpecInvalid
from dspy_forge.spec.loader import load_spec
from tests.conftest import ROOT

INVALID = ROOT / "tests" / "invalid"
CASES = sorted(path.stem for path in INVALID.glob("*.yaml"))
ANSI = re.compile(r"\x1b\[[0-9;]*m")
runner = CliRunner()


@pytest.fixture(autouse=True)
def in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the checkout, so that file names in messages are relative and stable."""
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("case", CASES)
def test_validate_prints_located_errors(case: str, snapshot: SnapshotAssertion) -> None:
    result = runner.invoke(app, ["validate", f"tests/invalid/{case}.yaml"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert ANSI.sub("", result.output) == snapshot


@pytest.mark.parametrize("case", CASES)
def test_every_error_names_file_line_and_column(case: str) -> None:
    with pytest.raises(SpecInvalid) as caught:
        load_spec(Path("tests/invalid") / f"{case}.yaml")
    for error in caught.value.errors:
        assert error.file == f"tests/invalid/{case}.yaml"
        assert error.location is not None and error.location.line >= 1, error
        assert error.message


@pytest.mark.parametrize("case", ["many-errors-at-once", "alias-bomb", "state-file-mismatch"])
def test_generate_writes_nothing_for_an_invalid_spec(case: str, tmp_path: Path) -> None:
    out = tmp_path / "project"
    result = runner.invoke(app, ["generate", f"tests/invalid/{case}.yaml", "--out", str(out)])
    assert result.exit_code == 1
    assert "problem" in result.output
    assert not out.exists()


def test_one_run_reports_shape_and_reference_errors_together() -> None:
    """A shape error in one place does not hide a broken reference elsewhere."""
    with pytest.raises(SpecInvalid) as caught:
        load_spec(Path("tests/invalid/many-errors-at-once.yaml"))
    found = {error.dotted for error in caught.value.errors}
    assert {
        "service.titel",  # unknown key
        "lm.temperature",  # out of range
        "signatures.Answer.outputs.answer.type",  # unsupported type
        "programs.agent.unknown",  # unknown key, in a program that is still cross-checked:
        "programs.agent.tools[0]",  # missing tool
        "programs.agent.stream[0].field",  # no such output
        "programs.qa.signature",  # missing signature
        "programs.qa.status.lm_start",  # unknown placeholder
        "programs.broken.module",  # a program whose shape is wrong
    } <= found
