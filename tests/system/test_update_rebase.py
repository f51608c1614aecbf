"""A project whose recorded template version is gone, and how it gets out of that.

The way in, as it happened: the project is generated from a template checkout
with no tags (a developer's `pip install -e .`), and `copier update` runs while
that checkout holds an untracked file. Copier then renders a commit of the dirty
tree that exists only in its temporary clone ("Dirty template changes included
automatically") and records it as `_commit`. The way out is
`dspy-forge generate SPEC --out DIR --rebase-on-current-template`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dspy_forge.cli import app
from dspy_forge.render.template import TemplateSource
from tests.conftest import ROOT
from tests.projects import run_project_tests
from tests.system.update_helpers import (
    CLOCK_BODY,
    PKG,
    SPEC_V1,
    SPEC_V2,
    assert_no_conflicts,
    assert_user_edits_intact,
    commit_all,
    disk_state,
    generate_committed,
    git,
    make_user_edits,
)

runner = CliRunner()
FLAG = "--rebase-on-current-template"


def answers(project: Path) -> dict[str, object]:
    return yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))


def untagged_checkout(where: Path) -> Path:
    """A template checkout as this repository is one: no tags, its own .gitignore."""
    repo = where / "checkout"
    repo.mkdir(parents=True)
    shutil.copy2(ROOT / "copier.yml", repo / "copier.yml")
    shutil.copy2(ROOT / ".gitignore", repo / ".gitignore")
    shutil.copytree(
        ROOT / "templates",
        repo / "templates",
        ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"),
    )
    git(repo, "init", "-q")
    commit_all(repo, "template")
    return repo


def copier_update(project: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "copier", "update", "--defaults"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result


def known(repo: Path, commit: object) -> bool:
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", f"{commit}^{{commit}}"],
        cwd=repo,
        capture_output=True,
        check=False,
    )
    return found.returncode == 0


@pytest.fixture
def checkout_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """An untagged checkout and a project generated from it, with the user's work committed."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    repo = untagged_checkout(tmp_path)
    source = TemplateSource(str(repo), "HEAD", str(repo))
    project = generate_committed(SPEC_V1, tmp_path / "svc", source, spec_dir=tmp_path / "specs")
    make_user_edits(project)
    monkeypatch.setenv("DSPY_FORGE_TEMPLATE", str(repo))
    return repo, project


def test_a_demo_folder_in_the_checkout_does_not_make_copier_record_a_lost_version(
    checkout_project: tuple[Path, Path],
) -> None:
    repo, project = checkout_project
    demo = repo / "demo-service"  # what `dspy-forge demo` writes, by default, into the checkout
    (demo / "src").mkdir(parents=True)
    (demo / "README.md").write_text("the demo\n", encoding="utf-8")
    (demo / ".dspy-forge-demo.json").write_text("{}\n", encoding="utf-8")

    result = copier_update(project)

    assert "Dirty template changes" not in result.stderr
    assert known(repo, answers(project)["_commit"])


def lose_the_version(repo: Path, project: Path) -> str:
    """`copier update` in a dirty checkout: the project then records a version nobody has."""
    (repo / "scratch.txt").write_text("a developer's notes\n", encoding="utf-8")
    result = copier_update(project)
    assert "Dirty template changes included automatically" in result.stderr
    commit = str(answers(project)["_commit"])
    assert not known(repo, commit)
    commit_all(project, "copier update")
    return commit


def test_a_lost_template_version_is_refused_with_the_recovery_named(
    checkout_project: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, project = checkout_project
    lost = lose_the_version(repo, project)
    spec = tmp_path / "specs" / "spec.yaml"
    before = disk_state(project)

    result = runner.invoke(app, ["generate", str(spec), "--out", str(project)])

    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert f"generated from template version {lost}" in output
    assert "which cannot be found" in output
    assert f"dspy-forge generate {spec} --out {project} {FLAG}" in output
    assert disk_state(project) == before


def test_rebase_on_current_template_keeps_the_edits_and_records_a_version_that_exists(
    checkout_project: tuple[Path, Path], tmp_path: Path
) -> None:
    repo, project = checkout_project
    lost = lose_the_version(repo, project)
    (repo / "scratch.txt").unlink()
    spec = tmp_path / "specs" / "spec.yaml"
    spec.write_text(SPEC_V2, encoding="utf-8")  # and the spec moved on meanwhile
    before = disk_state(project)

    dry = runner.invoke(app, ["generate", str(spec), "--out", str(project), FLAG, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert disk_state(project) == before
    result = runner.invoke(app, ["generate", str(spec), "--out", str(project), FLAG])

    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert f"template version {lost} cannot be found" in output
    assert "rendered with the project's recorded answers" in output
    assert_user_edits_intact(project)
    assert (project / PKG / "tools/clock.py").read_text(encoding="utf-8") == CLOCK_BODY
    assert_no_conflicts(project)
    assert '"/summarize' in (project / PKG / "routes.py").read_text(encoding="utf-8")
    recorded = answers(project)
    assert recorded["_commit"] != lost and known(repo, recorded["_commit"])
    assert recorded["_src_path"] == str(repo)
    run_project_tests(project)

    # From now on the project updates the ordinary way, without the flag.
    commit_all(project, "rebased")
    again = runner.invoke(app, ["generate", str(spec), "--out", str(project)])
    assert again.exit_code == 0, again.output
    assert "is up to date" in again.output


def test_the_flag_is_not_needed_when_the_version_exists(
    checkout_project: tuple[Path, Path], tmp_path: Path
) -> None:
    _, project = checkout_project
    spec = tmp_path / "specs" / "spec.yaml"
    result = runner.invoke(app, ["generate", str(spec), "--out", str(project), FLAG])
    assert result.exit_code == 0, result.output
    assert "is up to date" in result.output
