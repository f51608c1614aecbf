"""Every example's generated project, pinned as plain files under tests/golden/record/.

``record/<example>/`` is the tree ``dspy-forge generate specs/<example>.yaml`` writes,
except the generic runtime (``src/<package>/runtime/``, the same for every project),
pinned once in ``record/_runtime/``. Each example is generated afresh and compared
with its record byte for byte; a mismatch prints a unified diff. Only the checkout's
``_src_path`` and ``_commit`` answers are masked. A template change shows as a plain
diff of these files: review it, then rewrite the record with

    .venv/bin/python -m pytest tests/golden --update-golden

(or ``DSPY_FORGE_UPDATE_GOLDEN=1``) and commit what ``git diff tests/golden/record`` shows.
"""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest

from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec
from tests.conftest import EXAMPLES, SPECS
from tests.projects import masked

RECORD = Path(__file__).resolve().parent / "record"
RUNTIME = "_runtime"  # record/_runtime/ is src/<package>/runtime/ of every example
UPDATE = ".venv/bin/python -m pytest tests/golden --update-golden"


def split(project: Path, package: str) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """A generated project's files (masked) by relative path: its own, and its runtime's."""
    own: dict[str, bytes] = {}
    runtime: dict[str, bytes] = {}
    prefix = f"src/{package}/runtime/"
    for path in sorted(p for p in project.rglob("*") if p.is_file()):
        relative = path.relative_to(project).as_posix()
        data = masked(relative, path.read_bytes())
        if relative.startswith(prefix):
            runtime[relative.removeprefix(prefix)] = data
        else:
            own[relative] = data
    return own, runtime


def recorded(folder: Path) -> dict[str, bytes]:
    if not folder.is_dir():
        return {}
    files = (p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(files)}


def rewrite(folder: Path, files: dict[str, bytes]) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    for relative, data in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def lines(data: bytes) -> list[str]:
    return data.decode("utf-8", errors="replace").splitlines(keepends=True)


def differences(record: dict[str, bytes], generated: dict[str, bytes], where: str) -> list[str]:
    """One unified diff (record -> generated) per file that differs, is missing or is new."""
    diffs = []
    for relative in sorted(record.keys() | generated.keys()):
        old, new = record.get(relative), generated.get(relative)
        if old == new:
            continue
        diff = difflib.unified_diff(
            lines(old or b""),
            lines(new or b""),
            fromfile=f"record/{where}/{relative}" if old is not None else "/dev/null",
            tofile=f"generated/{where}/{relative}" if new is not None else "/dev/null",
        )
        text = "".join(line if line.endswith("\n") else line + "\n" for line in diff)
        if old is None:
            text = text or f"generated/{where}/{relative}: a new empty file\n"
        elif new is None:
            text = text or f"record/{where}/{relative}: an empty file no longer generated\n"
        diffs.append(text or f"record/{where}/{relative}: differs in line endings only\n")
    return diffs


@pytest.mark.parametrize("name", EXAMPLES)
def test_generated_project_matches_its_record(
    name: str, tmp_path: Path, update_golden: bool
) -> None:
    loaded = load_spec(SPECS / f"{name}.yaml")
    project = generate(loaded, tmp_path / "project")
    own, runtime = split(project, loaded.model.package)
    assert runtime, f"no src/{loaded.model.package}/runtime/ in the generated project"
    if update_golden:
        rewrite(RECORD / name, own)
        rewrite(RECORD / RUNTIME, runtime)
        return
    diffs = differences(recorded(RECORD / name), own, name)
    diffs += differences(recorded(RECORD / RUNTIME), runtime, RUNTIME)
    if diffs:
        pytest.fail(
            f"specs/{name}.yaml no longer generates its record (tests/golden/record/); "
            f"after reviewing the diff below (record -> generated), update with:\n"
            f"  {UPDATE}\n\n" + "".join(diffs),
            pytrace=False,
        )


def test_the_record_holds_the_examples_and_nothing_else(update_golden: bool) -> None:
    expected = {*EXAMPLES, RUNTIME}
    if update_golden:
        RECORD.mkdir(exist_ok=True)
        for stale in (p for p in RECORD.iterdir() if p.name not in expected):
            if stale.is_dir():
                shutil.rmtree(stale)
            else:
                stale.unlink()
    found = {p.name for p in RECORD.iterdir()} if RECORD.is_dir() else set()
    assert found == expected, f"stale or missing records; update with:\n  {UPDATE}"
