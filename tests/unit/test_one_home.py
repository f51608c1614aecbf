"""One home for each fact: the generator states each of them once and imports it elsewhere.

Each test reads the generator's source and fails when a second copy of a fact
appears (a hook name, a spec pattern, the predictors of a DSPy module), and one
checks the home itself against DSPy.
"""

from __future__ import annotations

import ast
from pathlib import Path

import dspy
import pytest

from dspy_forge.service.anatomy import predictors
from dspy_forge.spec.base import PATTERNS
from dspy_forge.spec.contract import HOOKS

GENERATOR = Path(__file__).resolve().parents[2] / "generator"


def string_constants(*homes: str) -> dict[Path, set[str]]:
    """The string constants of every generator module except the ``homes``."""
    found: dict[Path, set[str]] = {}
    for path in GENERATOR.rglob("*.py"):
        if path.relative_to(GENERATOR).as_posix() in homes:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found[path] = {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        }
    return found


def test_the_status_hooks_are_listed_only_in_the_contract() -> None:
    for path, constants in string_constants("spec/contract.py").items():
        assert not constants & set(HOOKS), f"{path} names status hooks: import HOOKS instead"


def test_the_spec_patterns_are_written_only_in_the_contract() -> None:
    assert PATTERNS
    # The contract's modules: each pattern is written once, by matching(), in one of them.
    homes = ("spec/contract.py", "spec/server.py", "spec/program_parts.py", "spec/base.py")
    for path, constants in string_constants(*homes).items():
        assert not constants & set(PATTERNS), f"{path} repeats a pattern: import PATTERNS"


def test_the_predictors_of_a_module_are_listed_only_in_the_anatomy() -> None:
    for path, constants in string_constants("service/anatomy.py").items():
        assert "extract.predict" not in constants, f"{path} lists predictors: use anatomy"


@pytest.mark.parametrize("module", ["Predict", "ChainOfThought", "ReAct"])
def test_the_anatomy_matches_what_dspy_builds(module: str) -> None:
    signature = dspy.Signature("question, context -> answer")
    built = (
        getattr(dspy, module)(signature, tools=[lambda: ""])
        if module == "ReAct"
        else (getattr(dspy, module)(signature))
    )
    actual = {
        name: (tuple(p.signature.input_fields), tuple(p.signature.output_fields))
        for name, p in built.named_predictors()
    }
    assert actual == predictors(module, ("question", "context"), ("answer",))
