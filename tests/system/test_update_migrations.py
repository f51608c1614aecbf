"""Format changes: old specs still load, and Copier `_migrations` move the user's files.

Spec side: the format is at version 1 and has no migration yet, so these tests
install a test-only table (a format 0 that called `service.name` `service.id`)
to drive the real loader and CLI through the mechanism.

Project side: template v2 of a test repository moves the tool modules
(`tools/search.py` -> `tools/search_impl.py`, imports included) and carries the
`_migrations` command that moves the user's implementations with them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dspy_forge.cli import app
from dspy_forge.spec import migrations
from dspy_forge.spec.errors import SpecInvalid
from dspy_forge.spec.loader import load_spec_text
from dspy_forge.spec.migrations import SpecMigrated, SpecMigration, migrate_spec_data
from tests.projects import run_project_tests
from tests.system.update_helpers import (
    CLOCK_BODY,
    PKG,
    SEARCH_BODY,
    SPEC_V1,
    assert_no_conflicts,
    commit_all,
    edit,
    generate_committed,
    git,
    git_source,
    release,
    template_repository,
)

runner = CliRunner()


def rename_id_to_name(data: dict) -> dict:
    data["service"]["name"] = data["service"].pop("id")
    return data


FORMAT_0 = {0: SpecMigration(0, "rename service.id to service.name", rename_id_to_name)}
SPEC_FORMAT_0 = SPEC_V1.replace("version: 1", "version: 0").replace(
    "name: research-agent", "id: research-agent"
)


def test_a_spec_of_an_older_format_loads_with_a_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrations, "SPEC_MIGRATIONS", FORMAT_0)
    with pytest.warns(SpecMigrated) as caught:
        loaded = load_spec_text(SPEC_FORMAT_0, file="old.yaml")
    assert loaded.model.name == "research-agent"
    assert loaded.spec.version == 1
    [notice] = caught
    assert str(notice.message).startswith(
        "old.yaml is in spec format 0, read as format 1: rename service.id to service.name."
    )


def test_the_cli_shows_the_notice_and_generates(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(migrations, "SPEC_MIGRATIONS", FORMAT_0)
    spec = tmp_path / "old.yaml"
    spec.write_text(SPEC_FORMAT_0, encoding="utf-8")
    result = runner.invoke(app, ["generate", str(spec), "--out", str(tmp_path / "svc")])
    assert result.exit_code == 0, result.output
    assert "notice: " in result.output and "rename service.id to service.name" in result.output
    assert (tmp_path / "svc" / PKG / "main.py").is_file()
    assert spec.read_text(encoding="utf-8") == SPEC_FORMAT_0  # the file is never rewritten


def test_steps_chain_and_leave_the_input_alone() -> None:
    def add(key: str):
        def step(data: dict) -> dict:
            data[key] = True
            return data

        return step

    table = {1: SpecMigration(1, "add a", add("a")), 2: SpecMigration(2, "add b", add("b"))}
    original = {"version": 1, "service": {"name": "x"}}
    with pytest.warns(SpecMigrated, match="read as format 3: add a; add b"):
        migrated = migrate_spec_data(original, current=3, migrations=table)
    assert migrated == {"version": 3, "service": {"name": "x"}, "a": True, "b": True}
    assert original == {"version": 1, "service": {"name": "x"}}


@pytest.mark.parametrize("version", [0, 2, "1", True, None])
def test_versions_without_a_path_are_left_as_they_are(version: object) -> None:
    data = {"version": version, "service": {"name": "x"}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert migrate_spec_data(data, current=1, migrations={}) is data


@pytest.mark.parametrize("version", ["0", "2", "'1'", ""])
def test_the_shape_checks_then_refuse_them(version: str) -> None:
    with pytest.raises(SpecInvalid) as caught:
        load_spec_text(SPEC_V1.replace("version: 1", f"version: {version}"))
    assert any(
        error.path[:1] == ("version",) or "version" in error.message
        for error in caught.value.errors
    )


def move_tools_to_impl_modules(repo: Path) -> None:
    """Template v2: tool modules are named <module>_impl.py, with a migration moving them."""
    tools = repo / "templates" / "src" / "{{service.package}}" / "tools"
    [stub] = tools.glob("*yield*.jinja")
    stub.rename(
        tools
        / stub.name.replace(
            "{{ module.name }}{% endyield %}", "{{ module.name }}_impl{% endyield %}"
        )
    )
    edit(
        repo / "templates" / "src" / "{{service.package}}" / "programs.py.jinja",
        lambda t: t.replace(
            "from .tools.{{ module.name }} import", "from .tools.{{ module.name }}_impl import"
        ),
    )
    edit(
        repo / "copier.yml",
        lambda t: (
            t
            + """_migrations:
  - version: v2
    when: "{{ _stage == 'before' }}"
    command: >-
      for f in src/*/tools/*.py; do case "$f" in */__init__.py) ;;
      *) git mv "$f" "${f%.py}_impl.py" ;; esac; done
"""
        ),
    )


def test_a_copier_migration_moves_the_users_tools_with_the_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = template_repository(tmp_path)
    project = generate_committed(SPEC_V1, tmp_path / "svc", git_source(repo), spec_dir=tmp_path)
    (project / PKG / "tools/search.py").write_text(SEARCH_BODY, encoding="utf-8")
    (project / PKG / "tools/clock.py").write_text(CLOCK_BODY, encoding="utf-8")
    commit_all(project, "My tools")
    release(repo, "v2", move_tools_to_impl_modules)
    monkeypatch.setenv("DSPY_FORGE_TEMPLATE", str(repo))

    result = runner.invoke(app, ["generate", str(tmp_path / "spec.yaml"), "--out", str(project)])

    assert result.exit_code == 0, result.output
    tools = project / PKG / "tools"
    assert sorted(p.name for p in tools.glob("*.py")) == [
        "__init__.py",
        "clock_impl.py",
        "search_impl.py",
    ]
    assert (tools / "search_impl.py").read_text(encoding="utf-8") == SEARCH_BODY
    assert (tools / "clock_impl.py").read_text(encoding="utf-8") == CLOCK_BODY
    programs = (project / PKG / "programs.py").read_text(encoding="utf-8")
    assert "from .tools.search_impl import search" in programs
    assert "kept" not in result.output  # a move, not a deletion
    assert_no_conflicts(project)
    assert git(project, "status", "--porcelain").strip()
    run_project_tests(project)
