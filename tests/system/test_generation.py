"""What generation writes: the names the templates define, and no half-written project.

Split from tests/unit/test_validation.py: these generate a project, so they are system tests.
"""

from __future__ import annotations

import ast
from pathlib import Path

import dspy
import pytest

from dspy_forge.render.cleanup import removed_on_failure
from dspy_forge.render.generate import generate
from dspy_forge.service.names import TEMPLATE_NAMES, generated_names
from dspy_forge.spec.loader import load_spec
from tests.unit.test_validation import BASE, saved


def test_template_names_cover_what_the_templates_define(tmp_path: Path) -> None:
    """names.TEMPLATE_NAMES lists every name the templates add; update it with the templates."""
    saved(dspy.Predict("question -> answer"), tmp_path / "state.json")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        BASE
        + """
tools:
  search: {description: Search., args: {query: "Literal['a', 'b']"}, impl: "tools.web:find"}
programs:
  qa: {module: Predict, signature: "question -> answer", state: state.json,
       stream: [{field: answer}], lm: {model: other}}
  look: {module: ReAct, signature: "question, picture: Image -> answer", tools: [search]}
""",
        encoding="utf-8",
    )
    loaded = load_spec(spec)
    project = generate(loaded, tmp_path / "project")
    derived: dict[str, set[str]] = {}
    for item in generated_names(loaded.spec):
        module = "tools" if item.module.startswith("tools/") else item.module
        derived.setdefault(module, set()).add(item.name)
    package = project / "src" / "demo"
    for module, path in (
        ("signatures.py", package / "signatures.py"),
        ("schemas.py", package / "schemas.py"),
        ("programs.py", package / "programs.py"),
        ("routes.py", package / "routes.py"),
        ("client.py", package / "client.py"),
        ("tests/test_programs.py", project / "tests" / "test_programs.py"),
        ("tests/test_client.py", project / "tests" / "test_client.py"),
        ("tools", package / "tools" / "web.py"),
    ):
        # Only programs.py's functions name spec things (tools, signatures) inside them.
        names = defined_names(path.read_text(encoding="utf-8"), locals_=module == "programs.py")
        unknown = names - TEMPLATE_NAMES[module] - derived.get(module, set())
        assert not unknown, f"add {sorted(unknown)} to names.TEMPLATE_NAMES[{module!r}]"
    paths = route_paths((package / "routes.py").read_text(encoding="utf-8"))
    assert paths - derived["URL paths"] <= TEMPLATE_NAMES["URL paths"]


def defined_names(source: str, *, locals_: bool) -> set[str]:
    """Module-level names, and with ``locals_`` every name bound inside its functions."""
    names: set[str] = set()
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        if locals_ and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names |= {arg.arg for arg in node.args.args + node.args.kwonlyargs}
            names |= {
                inner.id
                for inner in ast.walk(node)
                if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store)
            }
    return names


def route_paths(source: str) -> set[str]:
    paths = set()
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"get", "post"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            paths.add("/v1" + node.args[0].value)
    return paths


def test_a_failed_generation_leaves_no_half_written_project(tmp_path: Path) -> None:
    """Copier has written the project when the state copy fails; all of it is removed."""
    state = saved(dspy.Predict("question -> answer"), tmp_path / "state.json")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        BASE + 'programs: {qa: {module: Predict, signature: "question -> answer", '
        "state: state.json}}\n",
        encoding="utf-8",
    )
    loaded = load_spec(spec)
    state.unlink()  # after validation: the copy into the project fails
    out = tmp_path / "new"
    with pytest.raises(OSError), removed_on_failure(out):
        generate(loaded, out)
    assert not out.exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OSError), removed_on_failure(empty):
        generate(loaded, empty)
    assert empty.is_dir() and not list(empty.iterdir())
