"""System tests: generate a project, serve it, talk to it over real HTTP (or run its CLI,
its tests, its package build). Everything here is marked ``system``.

Run them alone with ``pytest tests/system`` (or ``pytest -m system``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.system)
