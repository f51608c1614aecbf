"""The view is minimal: every key it gives Copier is read by a template (or by dspy-forge).

The view is stored in every project's answers file and read back by ``copier
update`` (docs/updating.md, "The answers"), so a key nobody reads is weight
that can only go stale.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from dspy_forge.render.view import render_data
from dspy_forge.spec.loader import load_spec
from dspy_forge.spec.settings import declared

ROOT = Path(__file__).resolve().parents[2]
# Keys dspy-forge itself reads back from a project's answers (render/update.py).
READ_BY_DSPY_FORGE = {"schema", "package"}


def keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for item in value.values() for k in keys(item)}
    if isinstance(value, list):
        return {k for item in value for k in keys(item)}
    return set()


def template_text() -> str:
    files = [p for p in (ROOT / "templates").rglob("*") if p.is_file()]
    return "\n".join([*(p.read_text(encoding="utf-8") for p in files), *map(str, files)])


@pytest.mark.parametrize("example", ["cited-answers", "qa", "research-agent", "toolbox"])
def test_every_key_of_the_view_is_read(example: str) -> None:
    data = render_data(load_spec(ROOT / "specs" / f"{example}.yaml").model)
    # The settings' values are read by name through the settings declaration.
    server = data.pop("server")
    assert set(server) == {setting.name for setting in declared() if setting.spec}
    text = template_text()
    unread = {
        key
        for key in keys(data) - READ_BY_DSPY_FORGE
        if not re.search(rf"\.{re.escape(key)}\b|attribute=\"{re.escape(key)}\"", text)
    }
    assert not unread, f"no template reads {sorted(unread)}: drop them from the view"
