"""Updating a generated project keeps the user's work: `copier update` and `dspy-forge generate`.

Each test builds a real template repository tagged v1, generates a project from
it, commits, makes the edits a user makes (tool bodies, a README line, a line in
a generated module, a test of their own), commits again, then moves the
template to v2 and/or changes the spec and updates, as docs/updating.md tells.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dspy_forge.cli import app
from tests.projects import run_project_tests
from tests.system.update_helpers import (
    CLOCK_BODY,
    PKG,
    SEARCH_BODY,
    SPEC_V1,
    SPEC_V2,
    V2_MAIN_LINE,
    V2_README_SECTION,
    assert_no_conflicts,
    assert_user_edits_intact,
    disk_state,
    generate_committed,
    git,
    git_source,
    make_user_edits,
    release,
    template_repository,
)

runner = CliRunner()


def answers(project: Path) -> dict[str, object]:
    return yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))


@pytest.fixture
def edited_project(tmp_path: Path) -> tuple[Path, Path]:
    """A template repository at v1 and a project generated from it, with the user's work."""
    repo = template_repository(tmp_path)
    project = generate_committed(
        SPEC_V1, tmp_path / "svc", git_source(repo), spec_dir=tmp_path / "specs"
    )
    assert answers(project)["_commit"] == "v1"
    assert answers(project)["_src_path"] == str(repo)
    make_user_edits(project)
    return repo, project


def test_copier_update_brings_template_v2_and_keeps_user_edits(
    edited_project: tuple[Path, Path],
) -> None:
    repo, project = edited_project
    release(repo, "v2")
    result = subprocess.run(
        [sys.executable, "-m", "copier", "update", "--defaults"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert answers(project)["_commit"] == "v2"
    assert V2_MAIN_LINE in (project / PKG / "main.py").read_text(encoding="utf-8")
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert V2_README_SECTION in readme
    assert_user_edits_intact(project)
    # The tool modules are the user's: v2's new stub header never reaches them.
    assert (project / PKG / "tools/clock.py").read_text(encoding="utf-8") == CLOCK_BODY
    assert_no_conflicts(project)
    run_project_tests(project)


def test_generate_merges_a_changed_spec_and_template_v2(
    edited_project: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, project = edited_project
    release(repo, "v2")
    spec = tmp_path / "specs" / "spec.yaml"
    spec.write_text(SPEC_V2, encoding="utf-8")
    monkeypatch.setenv("DSPY_FORGE_TEMPLATE", str(repo))

    result = runner.invoke(app, ["generate", str(spec), "--out", str(project)])

    assert result.exit_code == 0, result.output
    assert "template v1 -> v2" in result.output
    assert answers(project)["_commit"] == "v2"
    assert answers(project)["_src_path"] == str(repo)
    # The template's change arrived...
    assert V2_MAIN_LINE in (project / PKG / "main.py").read_text(encoding="utf-8")
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert V2_README_SECTION in readme
    # ...and the spec's: qa gone, summarize added, the agent's answer renamed reply.
    routes = (project / PKG / "routes.py").read_text(encoding="utf-8")
    assert '"/summarize' in routes and '"/qa' not in routes
    assert "/v1/summarize/stream" in readme and "/v1/qa" not in readme
    signatures = (project / PKG / "signatures.py").read_text(encoding="utf-8")
    assert "reply" in signatures and "answer" not in signatures
    generated_tests = (project / "tests/test_programs.py").read_text(encoding="utf-8")
    assert "summarize" in generated_tests and "qa" not in generated_tests
    # The user's work is all there; the dropped tool's implementation is kept, and said so.
    assert_user_edits_intact(project)
    assert (project / PKG / "tools/clock.py").read_text(encoding="utf-8") == CLOCK_BODY
    assert "kept src/research_agent/tools/clock.py" in " ".join(result.output.split())
    assert "clock" not in (project / PKG / "programs.py").read_text(encoding="utf-8")
    assert_no_conflicts(project)
    # Nothing is committed for the user; they review and commit.
    assert git(project, "log", "--format=%s", "-1").strip() == "My work"
    run_project_tests(project)


def test_dry_run_shows_the_diff_file_by_file_and_writes_nothing(
    edited_project: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, project = edited_project
    release(repo, "v2")
    spec = tmp_path / "specs" / "spec.yaml"
    spec.write_text(SPEC_V2, encoding="utf-8")
    monkeypatch.setenv("DSPY_FORGE_TEMPLATE", str(repo))
    before = disk_state(project)

    result = runner.invoke(app, ["generate", str(spec), "--out", str(project), "--dry-run"])

    assert result.exit_code == 0, result.output
    assert disk_state(project) == before
    lines = result.output.splitlines()
    assert f"  modified  {PKG}/main.py" in lines
    assert f"  modified  {PKG}/routes.py" in lines
    assert "  modified  README.md" in lines
    assert f"diff --git a/{PKG}/main.py b/{PKG}/main.py" in lines
    assert f"+{V2_MAIN_LINE}" in lines
    assert f"+{V2_README_SECTION}" in lines
    assert "-_commit: v1" in lines and "+_commit: v2" in lines
    # The user's own files are not in the diff: nothing would touch them.
    assert f"{PKG}/tools/search.py" not in result.output
    assert "dry run: nothing was written" in result.output

    # A real run then does exactly what the dry run showed.
    assert runner.invoke(app, ["generate", str(spec), "--out", str(project)]).exit_code == 0
    shown = {line.split()[-1] for line in lines if line.startswith(("  modified", "  added"))}
    changed = git(project, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert {line[3:] for line in changed} == shown


def test_dry_run_into_a_new_folder_lists_the_files_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = template_repository(tmp_path)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC_V1, encoding="utf-8")
    monkeypatch.setenv("DSPY_FORGE_TEMPLATE", str(repo))
    out = tmp_path / "new"

    result = runner.invoke(app, ["generate", str(spec), "--out", str(out), "--dry-run"])

    assert result.exit_code == 0, result.output
    assert not out.exists()
    assert "  added     .copier-answers.yml" in result.output.splitlines()
    assert f"+++ b/{PKG}/tools/search.py" in result.output.splitlines()


def test_regenerating_an_unchanged_spec_changes_nothing(
    edited_project: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, project = edited_project
    monkeypatch.setenv("DSPY_FORGE_TEMPLATE", str(repo))
    before = disk_state(project)

    result = runner.invoke(
        app, ["generate", str(tmp_path / "specs" / "spec.yaml"), "--out", str(project)]
    )

    assert result.exit_code == 0, result.output
    assert "is up to date" in result.output
    assert disk_state(project) == before
    assert (project / PKG / "tools/search.py").read_text(encoding="utf-8") == SEARCH_BODY


def test_a_new_tool_in_a_user_module_is_reported_not_written(
    edited_project: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, project = edited_project
    monkeypatch.setenv("DSPY_FORGE_TEMPLATE", str(repo))
    spec = tmp_path / "specs" / "spec.yaml"
    spec.write_text(
        SPEC_V1.replace(
            "  clock:\n",
            "  fetch:\n    description: Fetch a page.\n    args: {url: str}\n"
            "    impl: tools.search:fetch\n  clock:\n",
        ).replace("tools: [search, clock]", "tools: [search, clock, fetch]"),
        encoding="utf-8",
    )

    result = runner.invoke(app, ["generate", str(spec), "--out", str(project)])

    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "tools/search.py has no fetch, which programs.py imports" in output
    assert "async def fetch(url: str) -> str: ..." in output
    assert (project / PKG / "tools/search.py").read_text(encoding="utf-8") == SEARCH_BODY


def test_a_conflict_is_left_inline_and_reported(
    edited_project: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, project = edited_project
    readme = project / "README.md"
    [row] = [line for line in readme.read_text().splitlines() if line.startswith("| `POST /v1/qa`")]
    readme.write_text(readme.read_text().replace(row, "| `POST /v1/qa` | Our QA. |"))
    git(project, "commit", "-q", "-am", "Describe qa")
    spec = tmp_path / "specs" / "spec.yaml"
    spec.write_text(SPEC_V2, encoding="utf-8")
    monkeypatch.setenv("DSPY_FORGE_TEMPLATE", str(repo))

    result = runner.invoke(app, ["generate", str(spec), "--out", str(project)])

    assert result.exit_code == 0, result.output
    assert "conflicts: resolve the <<<<<<< before updating" in result.output
    assert "  README.md" in result.output.splitlines()
    text = readme.read_text(encoding="utf-8")
    assert "<<<<<<< before updating" in text and ">>>>>>> after updating" in text
    assert "| `POST /v1/qa` | Our QA. |" in text and "/v1/summarize/stream" in text
    # The rest of the update went in.
    assert '"/summarize' in (project / PKG / "routes.py").read_text(encoding="utf-8")
