"""`dspy-forge demo --out DIR` only ever replaces a demo folder it made itself, untouched.

Serving is stubbed out here (tests/system/test_demo_processes.py runs the real thing):
these tests are about what the command does to the folder before it serves.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pathspec import PathSpec
from typer.testing import CliRunner

from dspy_forge.cli import app
from dspy_forge.dev import demo
from tests.conftest import ROOT, SPECS
from tests.system.update_helpers import commit_all, disk_state, git

runner = CliRunner()
SPEC = str(SPECS / "qa.yaml")
MARKER = ".dspy-forge-demo.json"


@pytest.fixture(autouse=True)
def no_serving(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Replace serving with a stub that records the project it was given."""
    served: list[Path] = []

    def serve(_model: object, project: Path, *_args: Any, **_kwargs: Any) -> int:
        served.append(project)
        return 0

    monkeypatch.setattr(demo, "run_demo", serve)
    return served


def run_demo_command(out: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["demo", "--spec", SPEC, "--out", str(out), "--port", "0"])
    # Click's usage errors come in a Rich box, which folds a long path over its lines.
    unboxed = result.output.translate({ord(c): " " for c in "│╭╮╰╯─"})
    return result.exit_code, " ".join(unboxed.split())


def test_demo_refuses_an_existing_project_with_git_and_keeps_every_byte(tmp_path: Path) -> None:
    project = tmp_path / "svc"
    assert runner.invoke(app, ["generate", SPEC, "--out", str(project)]).exit_code == 0
    tool = project / "src/qa_service/tools"
    (tool / "mine.py").write_text("async def mine() -> str:\n    return 'mine'\n")
    git(project, "init", "-q")
    commit_all(project, "my project")
    before = disk_state(project)

    code, output = run_demo_command(project)

    assert code != 0
    assert disk_state(project) == before
    assert "Traceback" not in output
    assert f"{project} exists and is not a folder made by dspy-forge demo" in output
    assert "Choose another --out" in output


def test_demo_refuses_a_folder_of_the_users_files(tmp_path: Path, no_serving: list[Path]) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    before = disk_state(folder)
    code, output = run_demo_command(folder)
    assert code != 0 and disk_state(folder) == before and not no_serving
    assert "not a folder made by dspy-forge demo" in output


def test_demo_refuses_a_file(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("mine")
    code, output = run_demo_command(path)
    assert code != 0 and path.read_text() == "mine"
    assert "is a file" in output


def test_demo_marks_its_folder_and_regenerates_it_when_untouched(
    tmp_path: Path, no_serving: list[Path]
) -> None:
    out = tmp_path / "demo-service"
    assert run_demo_command(out)[0] == 0
    assert (out / MARKER).is_file()
    assert (out / "src/qa_service/main.py").is_file()
    # Running it serves Python from the folder, which leaves bytecode caches.
    cache = out / "src/qa_service/__pycache__"
    cache.mkdir()
    (cache / "main.cpython-311.pyc").write_bytes(b"\0cache")
    (out / "src/qa_service/main.py").touch()

    code, output = run_demo_command(out)

    assert code == 0, output
    assert no_serving == [out, out]
    assert (out / MARKER).is_file() and not cache.exists()
    assert not [p for p in tmp_path.iterdir() if p.name != "demo-service"]


@pytest.mark.parametrize(
    "change",
    [
        lambda out: git(out, "init", "-q"),
        lambda out: (out / "src/qa_service/tools/mine.py").write_text("x = 1\n"),
        lambda out: (out / "README.md").write_text("my notes\n"),
        lambda out: (out / "README.md").unlink(),
        lambda out: (out / "data").mkdir(),
        lambda out: os.symlink("/etc/hostname", out / "link"),
    ],
    ids=["git", "added-file", "edited-file", "deleted-file", "added-folder", "symlink"],
)
def test_demo_refuses_its_own_folder_once_it_holds_anything_foreign(
    tmp_path: Path, change: Any
) -> None:
    out = tmp_path / "demo-service"
    assert run_demo_command(out)[0] == 0
    change(out)
    before = disk_state(out)
    entries = sorted(p.relative_to(out) for p in out.rglob("*"))

    code, output = run_demo_command(out)

    assert code != 0, output
    assert disk_state(out) == before
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == entries
    assert "dspy-forge demo made it, but it now holds changes of yours" in output


def test_demo_fills_an_empty_folder(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    assert run_demo_command(out)[0] == 0
    assert (out / MARKER).is_file()


def test_a_failed_demo_generation_leaves_its_old_folder_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "demo-service"
    assert run_demo_command(out)[0] == 0
    before = disk_state(out)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(demo, "generate", broken)
    code, output = run_demo_command(out)

    assert code != 0 and "disk full" in output
    assert disk_state(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-service"]


def test_the_default_demo_folder_is_ignored_by_the_checkout() -> None:
    """A demo in the checkout must not make it dirty: Copier would record a draft commit."""
    import typer.main

    command = typer.main.get_command(app)
    params = command.commands["demo"].params  # type: ignore[attr-defined]
    [default] = [param.default for param in params if param.name == "out_dir"]
    ignored = PathSpec.from_lines(
        "gitwildmatch", (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    )
    for name in ("README.md", "src/research_agent/main.py", MARKER):
        assert ignored.match_file(f"{default}/{name}"), name
