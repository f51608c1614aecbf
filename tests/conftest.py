"""Shared fixtures for every tier (unit/, golden/, system/): the fake LM, example projects.

Each tier's own conftest.py marks its tests (``unit``, ``golden``, ``system``).
"""

from __future__ import annotations

import os
import shutil

# DSPy would fetch model metadata over the network on first use; offline, use LiteLLM's copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "true")

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dspy_forge.dev.fakelm.testing import FakeLM, running_fake_lm
from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
EXAMPLES = sorted(path.stem for path in SPECS.glob("*.yaml"))

# Set (to 1) to rewrite tests/golden/record/ from today's output instead of comparing with it.
UPDATE_GOLDEN_ENV = "DSPY_FORGE_UPDATE_GOLDEN"

# Tool bodies a user would write after generating, so agents get real observations:
# specs/tools/<spec>/<module>.py replaces the generated stub of that tool module.
EXAMPLE_TOOLS = SPECS / "tools"
# Likewise the bodies of Custom modules: specs/modules/<spec>/<module>.py replaces the stub.
EXAMPLE_MODULES = SPECS / "modules"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help=f"rewrite tests/golden/record/ from today's output (or set {UPDATE_GOLDEN_ENV}=1)",
    )


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    """Whether the golden tests rewrite their record instead of comparing with it."""
    wanted = os.environ.get(UPDATE_GOLDEN_ENV, "").strip() not in {"", "0"}
    return bool(request.config.getoption("--update-golden")) or wanted


@pytest.fixture(scope="session")
def fake_lm() -> Iterator[FakeLM]:
    """The project's fake OpenAI-compatible LM, on loopback, for the whole session."""
    with running_fake_lm() as server:
        yield server


@pytest.fixture(scope="session")
def example_project(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Generate an example spec once per session, with its tools filled in."""
    made: dict[str, Path] = {}

    def make(name: str) -> Path:
        if name not in made:
            loaded = load_spec(SPECS / f"{name}.yaml")
            out = generate(loaded, tmp_path_factory.mktemp(name) / "project")
            if (EXAMPLE_TOOLS / name).is_dir():
                tools = out / "src" / loaded.model.package / "tools"
                shutil.copytree(EXAMPLE_TOOLS / name, tools, dirs_exist_ok=True)
            if (EXAMPLE_MODULES / name).is_dir():
                modules = out / "src" / loaded.model.package / "modules"
                shutil.copytree(EXAMPLE_MODULES / name, modules, dirs_exist_ok=True)
            made[name] = out
        return made[name]

    return make
