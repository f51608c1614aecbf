"""Every setting of a generated service is declared once, in ``templates/_settings.yml``.

``settings.py``, ``.env.example``, the README's table, ``RunLimits`` and the
spec's ``server`` section all come from that declaration; these tests fail
when one of them grows a setting of its own (a second home).
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from forge_service.runtime.limits import RunLimits
from pydantic import BaseModel

from dspy_forge.spec.server import ServerSpec
from dspy_forge.spec.settings import by_spec_path, declared

ROOT = Path(__file__).resolve().parents[2]
RECORD = ROOT / "tests" / "golden" / "record"
# Golden projects: (folder, package, programs with their own LM).
PROJECTS = [("qa", "qa_service", []), ("toolbox", "toolbox", ["translate"])]
PROGRAM_SETTINGS = ("lm_model", "lm_api_base", "lm_api_key", "lm_max_connections")


def expected(own_lm: list[str]) -> list[str]:
    names = [setting.name for setting in declared()]
    return names + [f"{program}_{name}" for program in own_lm for name in PROGRAM_SETTINGS]


def settings_fields(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"))
    (settings,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Settings"]
    return [
        n.target.id
        for n in settings.body
        if isinstance(n, ast.AnnAssign)
        and isinstance(n.target, ast.Name)
        and not n.target.id.startswith("_")
        and n.target.id != "model_config"
    ]


@pytest.mark.parametrize(("folder", "package", "own_lm"), PROJECTS)
def test_settings_py_has_exactly_the_declared_settings(
    folder: str, package: str, own_lm: list[str]
) -> None:
    path = RECORD / folder / "src" / package / "settings.py"
    assert settings_fields(path) == expected(own_lm)


@pytest.mark.parametrize(("folder", "package", "own_lm"), PROJECTS)
def test_env_example_and_readme_list_exactly_the_declared_settings(
    folder: str, package: str, own_lm: list[str]
) -> None:
    names = [name.upper() for name in expected(own_lm)]
    env = (RECORD / folder / ".env.example").read_text("utf-8")
    assert re.findall(r"^# ([A-Z][A-Z0-9_]*)=", env, re.MULTILINE) == names
    readme = (RECORD / folder / "README.md").read_text("utf-8")
    assert re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", readme, re.MULTILINE) == names


def leaf_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    paths = set()
    for name, info in model.model_fields.items():
        annotation: Any = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths |= leaf_paths(annotation, f"{prefix}{name}.")
        else:
            paths.add(prefix + name)
    return paths


def test_the_spec_server_section_sets_exactly_the_settings_declared_with_a_spec_path() -> None:
    assert leaf_paths(ServerSpec) == set(by_spec_path())


def test_the_declared_defaults_are_valid_spec_values() -> None:
    # Pydantic does not validate defaults: validating a dump of them does.
    defaults = ServerSpec()
    assert ServerSpec.model_validate(defaults.model_dump()) == defaults


def test_run_limits_takes_exactly_the_declared_limits() -> None:
    declared_limits = [setting.limit for setting in declared() if setting.limit]
    assert sorted(declared_limits) == sorted(f.name for f in dataclasses.fields(RunLimits))
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(RunLimits))


def test_each_doc_can_be_quoted_as_it_is() -> None:
    for setting in declared():
        assert '"' not in setting.doc and "\\" not in setting.doc, setting.name
        assert setting.doc.endswith("."), setting.name
