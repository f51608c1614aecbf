"""Unit tests: fast, in-process, no generated project. Everything here is marked ``unit``.

Run them alone with ``pytest -m unit`` (or ``pytest tests/unit``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.unit)
