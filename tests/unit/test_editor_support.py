"""Editor support: the committed JSON Schema and docs/spec.md match the model.

Both files are generated from generator/spec.py. When a test here fails after a
change to the spec model, regenerate them with ``python -m dspy_forge.spec.docs``.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from pydantic import BaseModel
from typer.testing import CliRunner

from dspy_forge.cli import app
from dspy_forge.spec.docs import _sections, main, render_schema, render_spec_docs
from tests.conftest import EXAMPLES, ROOT, SPECS

DOCS = ROOT / "docs"
SCHEMA_FILE = DOCS / "spec.schema.json"
STALE = "stale: regenerate with `python -m dspy_forge.spec.docs`"
runner = CliRunner()


def test_committed_schema_is_up_to_date() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render_schema(), STALE


def test_committed_spec_reference_is_up_to_date() -> None:
    assert (DOCS / "spec.md").read_text(encoding="utf-8") == render_spec_docs(), STALE


def test_regenerating_writes_the_committed_files(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 0
    for name in ("spec.md", "spec.schema.json"):
        assert (tmp_path / name).read_text(encoding="utf-8") == (DOCS / name).read_text("utf-8")


def test_schema_command_prints_or_writes_the_committed_schema(tmp_path: Path) -> None:
    printed = runner.invoke(app, ["schema"])
    assert printed.exit_code == 0 and printed.output == render_schema()
    for option in ("--out", "--output", "-o"):
        target = tmp_path / f"schema{option}.json"
        written = runner.invoke(app, ["schema", option, str(target)])
        assert written.exit_code == 0, written.output
        assert target.read_text(encoding="utf-8") == render_schema()


def test_reference_documents_every_key_of_every_section() -> None:
    text = (DOCS / "spec.md").read_text(encoding="utf-8")
    for section in _sections():
        model: type[BaseModel] = section.model
        start = text.index(f'<a id="{model.__name__.lower()}"></a>')
        end = text.find('<a id="', start + 1)
        body = text[start : end if end > 0 else None]
        for key in model.model_fields:
            assert f"| `{key}` |" in body, f"{model.__name__}.{key} is not documented"


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_specs_point_editors_at_the_schema(name: str) -> None:
    path = SPECS / f"{name}.yaml"
    first = path.read_text(encoding="utf-8").splitlines()[0]
    prefix = "# yaml-language-server: $schema="
    assert first.startswith(prefix)
    assert (path.parent / first.removeprefix(prefix)).resolve() == SCHEMA_FILE
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")), schema)


def test_schema_refuses_what_the_loader_refuses() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    data = yaml.safe_load((SPECS / "qa.yaml").read_text(encoding="utf-8"))
    for broken in (
        {**data, "extra": 1},
        {**data, "lm": {**data["lm"], "tempreature": 0.2}},
        {**data, "service": {**data["service"], "title": "two\nlines"}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)
