"""The generator stays in small modules by stage, each saying what it owns."""

from __future__ import annotations

import ast
import statistics
from pathlib import Path

GENERATOR = Path(__file__).resolve().parents[2] / "generator"
STAGES = ("spec", "service", "render", "dev")


def test_no_module_is_over_400_lines_and_the_median_is_under_150() -> None:
    sizes = {
        path: len(path.read_text(encoding="utf-8").splitlines()) for path in GENERATOR.rglob("*.py")
    }
    too_long = {str(path.relative_to(GENERATOR)): n for path, n in sizes.items() if n > 400}
    assert not too_long, f"split these modules: {too_long}"
    assert statistics.median(sizes.values()) < 150


def test_every_stage_and_module_has_a_docstring_saying_what_it_holds() -> None:
    for stage in STAGES:
        assert (GENERATOR / stage / "__init__.py").is_file(), stage
    for path in GENERATOR.rglob("*.py"):
        if path.name == "__main__.py":
            continue
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert docstring, f"{path.relative_to(GENERATOR)} says nothing of what it holds"
