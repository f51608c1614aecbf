"""Today's template renders every earlier answers file: a plain ``copier update`` is safe.

``copier update`` renders the new template with the answers the old one
recorded, so a template that reads a key only newer answers hold renders
broken code for every existing project (a missing ``field.attr`` once gave
``: str = dspy.InputField()``). ``tests/compat/<version>/`` keeps the
``.copier-answers.yml`` of each example as that released version wrote it;
each is rendered here as ``copier update`` would (no ruff safety net after
it), and the project must be ruff-clean, import, and pass its own tests.
The rule that keeps this true is in docs/updating.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import copier
import pytest
import yaml

from dspy_forge.render.template import template_source, template_workspace
from tests.projects import run_project_tests

CORPUS = Path(__file__).resolve().parents[1] / "compat"
ANSWERS = sorted(CORPUS.glob("*/*.copier-answers.yml"))


@pytest.mark.parametrize(
    "answers", ANSWERS, ids=lambda p: f"{p.parent.name}/{p.name.split('.')[0]}"
)
def test_todays_template_renders_an_earlier_answers_file(answers: Path, tmp_path: Path) -> None:
    recorded = yaml.safe_load(answers.read_text(encoding="utf-8"))
    out = tmp_path / "project"
    with template_workspace(template_source()) as workspace:
        copier.run_copy(
            str(workspace.path),
            str(out),
            data={"service": recorded["service"]},
            defaults=True,
            quiet=True,
            unsafe=False,
            vcs_ref=workspace.ref,
        )
    for command in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command],
            cwd=out,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    run_project_tests(out)


def test_the_corpus_holds_every_example_of_the_first_release() -> None:
    examples = {p.name.split(".")[0] for p in (CORPUS / "v0.1.0").glob("*.copier-answers.yml")}
    assert examples == {"qa", "research-agent", "toolbox"}
