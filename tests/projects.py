"""Helpers shared by tests that work on whole generated projects."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

# Where the template came from and at which commit: machine and history, not output.
VOLATILE = re.compile(r"^(_src_path|_commit): .*$", re.MULTILINE)


def masked(relative: str, data: bytes) -> bytes:
    """A generated file's bytes with what depends on the checkout (not the output) masked."""
    if relative.rsplit("/", 1)[-1] == ".copier-answers.yml":
        return VOLATILE.sub(r"\1: <masked>", data.decode("utf-8")).encode("utf-8")
    return data


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` by relative path, with volatile answers masked."""
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        files[relative] = masked(relative, path.read_bytes()).decode("utf-8")
    return files


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
