"""The same spec gives byte-identical output, whatever the hash seed or the run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, SPECS
from tests.projects import tree


def generate_in_subprocess(spec: Path, out: Path, seed: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    command = [sys.executable, "-m", "dspy_forge", "generate", str(spec), "--out", str(out)]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return tree(out)


def test_two_hash_seeds_give_identical_trees(tmp_path: Path) -> None:
    spec = SPECS / "toolbox.yaml"
    first = generate_in_subprocess(spec, tmp_path / "a", "1")
    second = generate_in_subprocess(spec, tmp_path / "b", "4242")
    assert first == second
