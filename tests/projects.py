"""Helpers shared by tests that work on whole generated projects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_project_tests(project: Path) -> str:
    """Run a generated project's own test suite from its source folder; return its output."""
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout
    return result.stdout
