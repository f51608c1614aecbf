"""The raw Copier output of every example is ruff-clean, before any safety-net formatting.

Generation runs ``ruff format`` over a project as a safety net; with it off, what the
templates write must already pass ``ruff check`` and ``ruff format --check``. (The
record, tests/golden/record/, is the formatted output; this checks the templates.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec
from tests.conftest import EXAMPLES, SPECS


@pytest.mark.parametrize("name", EXAMPLES)
def test_raw_output_is_lint_and_format_clean(name: str, tmp_path: Path) -> None:
    project = generate(load_spec(SPECS / f"{name}.yaml"), tmp_path / "p", safety_format=False)
    for command in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
