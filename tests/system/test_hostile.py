"""No spec can inject code: a corpus of hostile specs, each rejected or rendered inert.

tests/hostile/ holds specs whose every string slot carries text that would break
out of a Python string or docstring, a Jinja or str.format template, Markdown,
HTML, TOML, YAML or a .env file. A ``rejected-*`` spec must fail validation with
located errors; any other must generate a project that passes ruff, compiles,
builds its app, and whose code reads back every spec string exactly. Nothing may
run: the corpus asks to ``touch PWNED`` in many ways, and no such file appears.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from dspy_forge.cli import app
from dspy_forge.render.generate import generate
from dspy_forge.render.literals import md_text
from dspy_forge.render.view import render_data
from dspy_forge.spec.errors import SpecInvalid
from dspy_forge.spec.loader import LoadedSpec, load_spec
from tests.conftest import ROOT

HOSTILE = ROOT / "tests" / "hostile"
ACCEPTED = sorted(p.stem for p in HOSTILE.glob("*.yaml") if not p.stem.startswith("rejected-"))
REJECTED = sorted(p.stem for p in HOSTILE.glob("rejected-*.yaml"))
# For each rejected spec, the places that must be reported (others may be too).
MUST_REPORT = {
    "rejected-control-characters": {
        "service.description",
        "lm.model",
        "signatures.Controls.instructions",
        "signatures.Controls.inputs.question.description",
        "signatures.Controls.outputs.answer.description",
        "programs.controls.status.lm_start",
    },
    "rejected-lone-surrogates": {"service.title", "programs.qa.description"},
    "rejected-line-breaks-in-title": {"service.title"},
    "rejected-code-in-names": {
        "service.name",
        "tools.os.system",
        "tools.exec.impl",
        "tools.other.impl",
        "programs.run(); import os",
        "programs.../../etc",
    },
    "rejected-code-in-types": {
        *(f"signatures.Types.inputs.{name}.type" for name in "abcdef"),
        "signatures.Types.outputs.answer.type",
    },
    "rejected-code-in-status": {
        f"programs.agent.status.{hook}"
        for hook in ("tool_start", "tool_end", "lm_start", "lm_end", "module_start", "module_end")
    },
    "rejected-files-outside-the-spec": {
        "programs.qa.state",
        "programs.other.state",
        "programs.existing.state",
        "programs.inside_then_out.state",
    },
    "rejected-html-in-title": {"service.title"},
    "rejected-bidi-controls": {
        "service.title",
        "service.description",
        "lm.model",
        "signatures.Ask.instructions",
        "signatures.Ask.inputs.question.description",
        "signatures.Ask.outputs.answer.type",
        "signatures.Ask.outputs.answer.description",
        "tools.search.description",
        "tools.search.args.query.description",
        "programs.agent.description",
        "programs.agent.status.tool_start",
        "programs.agent.status.lm_start",
    },
    "rejected-unbounded-strings": {
        "service.version",
        "service.description",
        "service.title",
        "lm.api_key_env",
        "lm.api_base",
        "signatures.Ask.instructions",
        "signatures.Ask.inputs.question.description",
        "tools.search.description",
        "tools.search.impl",
        "programs.agent",  # a key too long
        "programs.agent.description",
        "programs.agent.stream[0].predictor",
        "programs.agent.lm.api_key_env",
        "programs.agent.lm.api_base",
        "server.cors.origins[0]",
        "server.cors.headers[0]",
        "server.auth.open_paths[0]",
    },
}
runner = CliRunner()


def test_every_rejected_case_lists_what_it_must_report() -> None:
    assert set(MUST_REPORT) == set(REJECTED)


@pytest.mark.parametrize("case", REJECTED)
def test_rejected_with_located_errors(case: str) -> None:
    path = HOSTILE / f"{case}.yaml"
    with pytest.raises(SpecInvalid) as caught:
        load_spec(path)
    errors = caught.value.errors
    assert all(e.file == str(path) and e.location is not None for e in errors), errors
    assert MUST_REPORT[case] <= {e.dotted for e in errors}
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_a_state_outside_the_spec_is_refused_alike_whether_it_exists() -> None:
    """'existing' names a real program.save() state; 'other' a file that is nowhere."""
    with pytest.raises(SpecInvalid) as caught:
        load_spec(HOSTILE / "rejected-files-outside-the-spec.yaml")
    messages = {e.dotted: e.message for e in caught.value.errors}
    assert messages["programs.existing.state"] == messages["programs.other.state"]
    assert messages["programs.inside_then_out.state"] == messages["programs.other.state"]


def test_the_command_line_shows_no_bidi_control_raw() -> None:
    result = runner.invoke(app, ["validate", str(HOSTILE / "rejected-bidi-controls.yaml")])
    assert result.exit_code == 1
    assert not re.search("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]", result.output)


@pytest.mark.parametrize("case", ACCEPTED)
def test_validate_prints_hostile_text_without_failing(case: str) -> None:
    result = runner.invoke(app, ["validate", str(HOSTILE / f"{case}.yaml")])
    assert result.exit_code == 0, result.output
    assert result.exception is None


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[LoadedSpec, Path]]:
    """Every accepted spec, generated once."""
    made = {}
    for case in ACCEPTED:
        loaded = load_spec(HOSTILE / f"{case}.yaml")
        made[case] = (loaded, generate(loaded, tmp_path_factory.mktemp(case) / "project"))
    return made


@pytest.fixture(scope="module")
def probed(
    projects: dict[str, tuple[LoadedSpec, Path]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """What each project's code holds of its spec, read back in one fresh process."""
    pairs = [[str(out / "src"), loaded.model.package] for loaded, out in projects.values()]
    cwd = tmp_path_factory.mktemp("probe")
    result = subprocess.run(
        [sys.executable, "-m", "tests.system.probe", json.dumps(pairs)],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "true"},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert not list(cwd.iterdir()), "the probe's folder must stay empty (nothing ran)"
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("case", ACCEPTED)
def test_project_passes_ruff_and_compiles(
    case: str, projects: dict[str, tuple[LoadedSpec, Path]]
) -> None:
    _, project = projects[case]
    for command in (
        ["ruff", "check", "--no-cache", "."],
        ["ruff", "format", "--check", "--no-cache", "."],
        ["compileall", "-q", "src", "tests"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", *command], cwd=project, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.parametrize("case", ACCEPTED)
def test_app_builds_and_serves_every_program(
    case: str, projects: dict[str, tuple[LoadedSpec, Path]], probed: dict[str, Any]
) -> None:
    loaded, project = projects[case]
    paths = set(probed[loaded.model.package]["paths"])
    for program in loaded.spec.programs:
        assert {f"/v1/{program}", f"/v1/{program}/stream"} <= paths
    assert not list(project.rglob("PWNED")) and not (ROOT / "PWNED").exists()


def route_descriptions(project: Path, package: str) -> dict[str, str]:
    """The ``description=`` literal of each route in the generated routes.py, by path."""
    source = (project / "src" / package / "routes.py").read_text(encoding="utf-8")
    found = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            for keyword in node.keywords:
                if keyword.arg == "description":
                    found[node.args[0].value] = ast.literal_eval(keyword.value)
    return found


@pytest.mark.parametrize("case", ACCEPTED)
def test_python_strings_round_trip(
    case: str, projects: dict[str, tuple[LoadedSpec, Path]], probed: dict[str, Any]
) -> None:
    loaded, project = projects[case]
    spec, model = loaded.spec, loaded.model
    found = probed[model.package]
    assert found["title"] == (spec.service.title or spec.service.name)
    assert found["description"] == spec.service.description
    assert found["service_lm"]["model"] == spec.lm.model
    assert found["service_lm"]["api_base"] == spec.lm.api_base
    for name, signature in spec.signatures.items():
        code = found["signatures"][name]
        if signature.instructions is not None:
            # DSPy reads instructions as a docstring, through inspect.cleandoc.
            assert code["instructions"] == inspect.cleandoc(signature.instructions)
        fields = {**signature.inputs, **signature.outputs}
        assert code["descriptions"] == {k: f.description for k, f in fields.items()}
    for sig_model in model.signatures:
        for field in (*sig_model.inputs, *sig_model.outputs):
            if field.type.kind == "literal":
                literals = found["signatures"][sig_model.class_name]["literals"][field.name]
                assert literals == list(field.type.literal_values)
    for name, program in spec.programs.items():
        served = found["programs"][name]
        # Only the hooks the spec gives a message for reach the runtime; the rest are silent.
        given = {hook: text for hook, text in program.status.model_dump().items() if text}
        assert served["status"] == given
        assert served["tools"] == {t: spec.tools[t].description for t in program.tools}
        if program.lm is not None and program.lm.model is not None:
            assert served["lm"]["model"] == program.lm.model
        if program.description:
            # FastAPI strips an operation's description (fastapi.routing, "\f" and strip).
            assert found["operations"][f"/v1/{name}"] == program.description.strip()
            assert found["operations"][f"/v1/{name}/stream"] == program.description.strip()
            assert route_descriptions(project, model.package)[f"/{name}"] == program.description
        prefix = next(p.class_prefix for p in model.programs if p.name == name)
        request = found["schemas"][f"{prefix}Request"]
        for field in next(p for p in model.programs if p.name == name).signature.inputs:
            assert request[field.name] == field.description


@pytest.mark.parametrize("case", ACCEPTED)
def test_documentation_pages_hold_no_markup_from_the_spec(
    case: str, projects: dict[str, tuple[LoadedSpec, Path]], probed: dict[str, Any]
) -> None:
    """FastAPI writes the title into these pages unescaped; the spec allows no < > in it."""
    loaded, _ = projects[case]
    for page in probed[loaded.model.package]["pages"].values():
        assert page.count("<title>") == 1 and page.count("</title>") == 1
        assert "<script>alert" not in page and "<img" not in page


@pytest.mark.parametrize("case", ACCEPTED)
def test_text_files_are_escaped(case: str, projects: dict[str, tuple[LoadedSpec, Path]]) -> None:
    loaded, project = projects[case]
    spec, model = loaded.spec, loaded.model
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["name"] == spec.service.name
    assert pyproject["project"]["description"] == model.title

    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert answers["service"] == json.loads(json.dumps(render_data(model)))

    readme = (project / "README.md").read_text(encoding="utf-8")
    assert readme.startswith(f"# {md_text(model.title)}\n")
    assert md_text(model.description) in readme
    outside_code = re.sub(r"^```.*?^```$", "", readme, flags=re.MULTILINE | re.DOTALL)
    assert [line for line in outside_code.splitlines() if line.startswith("# ")] == [
        f"# {md_text(model.title)}"
    ]
    # The README's own code blocks only: no spec string opens a fence.
    fences = {"```", "```bash", "```python", "```tsx", "```json", "```ts"}
    assert {line for line in readme.splitlines() if line.startswith("```")} <= fences
    for raw in ("<script", "<img", "<!--", "</details", "<b>"):
        assert raw not in readme
    assert not re.search(r"(?<!\\)\]\(javascript:", readme)  # brackets escaped: no link

    for line in (project / ".env.example").read_text(encoding="utf-8").splitlines():
        assert line == "" or line.startswith("#") or re.fullmatch(r"[A-Z][A-Z0-9_]*=[^\s]*", line)
