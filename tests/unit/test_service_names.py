"""A service's package may not hide a module that the generated project imports.

The package is installed beside the project's dependencies, so its name is
refused when it is a keyword, a standard-library module (``test`` included), or
a top-level module of any distribution in the closure of the generated project's
requirements, as installed here; a committed list covers an environment without them.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

from dspy_forge.service import packages
from dspy_forge.service.packages import KNOWN_CLOSURE_MODULES, package_problem
from tests.conftest import ROOT
from tests.unit.test_validation import errors_of

SERVICE_NAME = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")  # a package the spec can name


def project_requirements() -> list[str]:
    """The generated project's dependencies, read from its template, with the test extra."""
    text = (ROOT / "templates" / "pyproject.toml.jinja").read_text(encoding="utf-8")
    found = re.findall(r'"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*[<>=!~;]', text)
    return [name for name in found if name != "setuptools"]


def closure_modules() -> set[str]:
    """Top-level modules of every installed distribution the project's requirements pull in."""
    environment = default_environment()
    seen: set[str] = set()
    todo = [(name, frozenset[str]()) for name in project_requirements()]
    while todo:
        name, extras = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.distribution(key).requires or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or any(
                marker.evaluate({**environment, "extra": extra}) for extra in (extras or {""})
            ):
                todo.append((requirement.name, frozenset(requirement.extras)))
    modules = set()
    for module, distributions in metadata.packages_distributions().items():
        if any(re.sub(r"[-_.]+", "-", d).lower() in seen for d in distributions):
            modules.add(module)
    return modules


@pytest.mark.parametrize(
    "name", ["test", "tqdm", "typing_extensions", "typing-extensions", "requests", "jinja2"]
)
def test_a_service_name_hiding_an_installed_module_is_refused(name: str) -> None:
    errors = errors_of(
        f"version: 1\nservice: {{name: {name}}}\nlm: {{model: m}}\n"
        "programs: {qa: {module: Predict, signature: 'q -> a'}}\n"
    )
    assert list(errors) == ["service.name"]
    assert "would hide" in errors["service.name"]


def test_the_template_still_lists_the_requirements_this_test_reads() -> None:
    requirements = project_requirements()
    assert {"dspy", "fastapi", "uvicorn", "pydantic", "pytest", "ruff"} <= set(requirements)


def test_every_top_level_module_of_the_dependency_closure_is_refused() -> None:
    modules = closure_modules()
    assert {"dspy", "litellm", "tqdm", "requests", "jinja2", "typing_extensions"} <= modules
    accepted = sorted(
        m for m in modules if SERVICE_NAME.match(m.lower()) and package_problem(m.lower()) is None
    )
    assert not accepted, accepted


def test_the_committed_list_covers_the_closure_installed_here() -> None:
    """For an environment without the dependencies; update KNOWN_CLOSURE_MODULES when it fails."""
    missing = sorted(
        m
        for m in closure_modules()
        if SERVICE_NAME.match(m.lower()) and m.lower() not in KNOWN_CLOSURE_MODULES
    )
    assert not missing, f"add {missing} to packages.KNOWN_CLOSURE_MODULES"


def test_without_the_installed_closure_the_committed_list_still_refuses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(packages, "installed_closure_modules", lambda: {})
    for module in ("tqdm", "requests", "jinja2", "litellm", "openai"):
        assert package_problem(module) is not None, module


def test_the_standard_library_and_names_close_to_it() -> None:
    for module in ("json", "test", "typing", "asyncio"):
        assert "standard library" in (package_problem(module) or ""), module
    assert package_problem("research_agent") is None
    assert package_problem("qa_service") is None
