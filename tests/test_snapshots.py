"""The whole generated tree of every example spec, pinned file by file.

A change to the templates shows here as a reviewed diff. After reviewing it,
update with:  pytest tests/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec
from tests.conftest import EXAMPLES, SPECS

# Where the template came from and at which commit: machine and history, not output.
VOLATILE = re.compile(r"^(_src_path|_commit): .*$", re.MULTILINE)


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` by relative path, with volatile answers masked."""
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8")
        if path.name == ".copier-answers.yml":
            text = VOLATILE.sub(r"\1: <masked>", text)
        files[path.relative_to(root).as_posix()] = text
    return files


@pytest.mark.parametrize("name", EXAMPLES)
def test_generated_tree(name: str, tmp_path: Path, snapshot: SnapshotAssertion) -> None:
    project = generate(load_spec(SPECS / f"{name}.yaml"), tmp_path / "project")
    assert tree(project) == snapshot
