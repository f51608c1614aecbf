"""The public API the CLI is a shell over: ``dspy_forge.load_spec`` and ``dspy_forge.generate``."""

from __future__ import annotations

from pathlib import Path

import pytest

import dspy_forge
from dspy_forge.render.update import UpdateRefused
from dspy_forge.spec.errors import SpecInvalid
from tests.system.update_helpers import commit_all, git

SPECS = Path(__file__).resolve().parents[2] / "specs"


def test_load_spec_then_generate_makes_a_project(tmp_path: Path) -> None:
    spec = dspy_forge.load_spec(SPECS / "qa.yaml")
    out = dspy_forge.generate(spec, tmp_path / "qa")
    assert out == tmp_path / "qa"
    assert (out / "src" / "qa_service" / "programs.py").is_file()


def test_generate_on_a_generated_project_updates_it_and_refuses_one_outside_git(
    tmp_path: Path,
) -> None:
    spec = dspy_forge.load_spec(SPECS / "qa.yaml")
    out = dspy_forge.generate(spec, tmp_path / "qa")
    with pytest.raises(UpdateRefused, match="git"):
        dspy_forge.generate(spec, out)


def test_load_spec_reports_every_problem(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nservice: {name: Bad Name}\nlm: {}\nprograms: {}\n")
    with pytest.raises(SpecInvalid) as raised:
        dspy_forge.load_spec(broken)
    assert len(raised.value.errors) >= 2


def test_a_built_wheel_in_the_project_does_not_stop_a_regenerate(tmp_path: Path) -> None:
    # After `pip wheel .`, build/ held untracked files and generate refused the project.
    spec = dspy_forge.load_spec(SPECS / "qa.yaml")
    out = dspy_forge.generate(spec, tmp_path / "qa")
    git(out, "init", "-q")
    commit_all(out, "generated")
    built = out / "build" / "lib" / "qa_service" / "__init__.py"
    built.parent.mkdir(parents=True)
    built.write_text("")
    (out / "dist").mkdir()
    (out / "dist" / "qa_service-0.1.0-py3-none-any.whl").write_bytes(b"")
    plan = dspy_forge.generate(spec, out)
    assert not isinstance(plan, Path)
    assert not plan.changes
