"""Where the template comes from, what a project records, and how an update finds both versions.

An installed wheel has no git: its template is recorded as the public
repository at the tag of the package's version. Here a local repository stands
in for the public one, and a plain folder for the wheel's copy of the template.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from dspy_forge import __version__
from dspy_forge.render import template
from dspy_forge.render.generate import generate
from dspy_forge.render.template import TEMPLATE_REPOSITORY, TemplateSource, template_source
from dspy_forge.render.update import UpdateRefused, update_project
from dspy_forge.spec.loader import load_spec_text
from tests.projects import run_project_tests
from tests.system.update_helpers import (
    PKG,
    SPEC_V1,
    SPEC_V2,
    V2_MAIN_LINE,
    assert_user_edits_intact,
    change_template_to_v2,
    disk_state,
    edit,
    generate_committed,
    git,
    make_user_edits,
    release,
    template_repository,
)


def answers(project: Path) -> dict[str, object]:
    return yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))


def wheel_copy(repo: Path, where: Path) -> Path:
    """The template as a wheel ships it: copier.yml and templates/, no git."""
    where.mkdir(parents=True)
    shutil.copy2(repo / "copier.yml", where / "copier.yml")
    shutil.copytree(repo / "templates", where / "templates")
    return where


def test_an_installed_copy_records_the_public_repository_at_its_version_tag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = wheel_copy(template_repository(tmp_path), tmp_path / "site-packages" / "_template")
    monkeypatch.delenv("DSPY_FORGE_TEMPLATE", raising=False)
    monkeypatch.setattr(template, "template_root", lambda: installed)
    source = template_source()
    assert source == TemplateSource(
        str(installed), f"v{__version__}", TEMPLATE_REPOSITORY, packaged=True
    )
    project = generate(load_spec_text(SPEC_V1), tmp_path / "svc", source=source)
    assert answers(project)["_src_path"] == "https://github.com/dspy-forge/dspy-forge.git"
    assert answers(project)["_commit"] == f"v{__version__}"


def test_an_installed_copy_updates_offline_and_fetches_an_older_version(tmp_path: Path) -> None:
    public = template_repository(tmp_path / "public", tag="v0.1.0")
    wheel_1 = wheel_copy(public, tmp_path / "wheel-0.1.0")
    source_1 = TemplateSource(str(wheel_1), "v0.1.0", str(public), packaged=True)
    project = generate_committed(SPEC_V1, tmp_path / "svc", source_1, spec_dir=tmp_path / "s")
    assert answers(project)["_src_path"] == str(public)
    make_user_edits(project)

    # The same version, a changed spec: no need of the public repository at all.
    offline = public.rename(tmp_path / "public-offline")
    update_project(load_spec_text(SPEC_V2), project, source=source_1)
    assert '"/summarize' in (project / PKG / "routes.py").read_text(encoding="utf-8")
    git(project, "commit", "-q", "-am", "Spec v2")
    offline.rename(public)

    # dspy-forge 0.2.0: the old version comes from the recorded public repository.
    release(public, "v0.2.0")
    wheel_2 = wheel_copy(public, tmp_path / "wheel-0.2.0")
    source_2 = TemplateSource(str(wheel_2), "v0.2.0", str(public), packaged=True)
    plan = update_project(load_spec_text(SPEC_V2), project, source=source_2)

    assert (plan.old_version, plan.new_version) == ("v0.1.0", "v0.2.0")
    assert answers(project)["_commit"] == "v0.2.0"
    assert answers(project)["_src_path"] == str(public)
    assert V2_MAIN_LINE in (project / PKG / "main.py").read_text(encoding="utf-8")
    assert_user_edits_intact(project)
    run_project_tests(project)


def test_uncommitted_template_changes_are_a_reproducible_version(tmp_path: Path) -> None:
    repo = template_repository(tmp_path)
    change_template_to_v2(repo)  # edited, not committed: a developer's checkout
    checkout = TemplateSource(str(repo), "HEAD", str(repo))
    first = generate(load_spec_text(SPEC_V1), tmp_path / "a", source=checkout)
    second = generate(load_spec_text(SPEC_V1), tmp_path / "b", source=checkout)
    commit = answers(first)["_commit"]
    assert commit == answers(second)["_commit"]
    assert str(commit).startswith("v1-1-g")
    assert V2_MAIN_LINE in (first / PKG / "main.py").read_text(encoding="utf-8")
    git(first, "init", "-q")
    git(first, "add", "-A")
    git(first, "commit", "-q", "-m", "generated")

    # While the template's changes stay as they are, the spec can change.
    update_project(load_spec_text(SPEC_V2), first, source=checkout)
    assert '"/summarize' in (first / PKG / "routes.py").read_text(encoding="utf-8")
    git(first, "commit", "-q", "-am", "Spec v2")

    # Once they change again, the version the project records is gone: refused.
    edit(repo / "templates/src/{{service.package}}/main.py", lambda t: t + "# more\n")
    before = disk_state(first)
    with pytest.raises(UpdateRefused, match="uncommitted template changes"):
        update_project(load_spec_text(SPEC_V1), first, source=checkout)
    assert disk_state(first) == before
