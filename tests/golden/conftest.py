"""Golden tests: generated output pinned on disk. Everything here is marked ``golden``.

Run them alone with ``pytest tests/golden`` (or ``pytest -m golden``). ``record/`` holds
the pinned projects: data, not tests, so it is never collected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

# The generated projects' own tests and conftest.py live in the record; they are not ours.
collect_ignore = ["record"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.golden)
