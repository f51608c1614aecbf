"""Spec format migrations: a spec written for an older format is read as the current one.

Each step turns the plain data of format ``N`` into format ``N + 1``; the loader
runs them on the parsed YAML before the shape checks, so an old spec keeps
loading (in memory, with a :class:`SpecMigrated` notice telling what changed)
and the file on disk is never rewritten. The project side of a format change
(a generated file that moves, a user file that must follow it) is Copier's
``_migrations`` in copier.yml, run by ``copier update`` and by
``dspy-forge generate`` on an existing project; docs/updating.md shows both.

The format is at version 1, so :data:`SPEC_MIGRATIONS` is empty; a step is
added, with its test, in the change that moves the format to version 2.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dspy_forge.spec.contract import SPEC_VERSION

Data = dict[str, Any]


@dataclass(frozen=True)
class SpecMigration:
    """One step: the data of format ``from_version`` turned into ``from_version + 1``."""

    from_version: int
    summary: str  # what the user changes by hand to stop the notice, e.g. "rename X to Y"
    apply: Callable[[Data], Data]  # may change its argument: it gets a deep copy


# from_version -> the step to from_version + 1
SPEC_MIGRATIONS: dict[int, SpecMigration] = {}


class SpecMigrated(UserWarning):
    """A spec of an older format was read as the current one; the message says what changed."""


def migrate_spec_data(
    data: Any,
    *,
    file: str | None = None,
    current: int = SPEC_VERSION,
    migrations: Mapping[int, SpecMigration] | None = None,
) -> Any:
    """``data`` in format ``current``, warning :class:`SpecMigrated` if it had to change.

    Data that is not a mapping, has no integer version, is already current, or
    has no chain of steps to ``current`` is returned as it is, for the shape
    checks to report.
    """
    table = SPEC_MIGRATIONS if migrations is None else migrations
    if not isinstance(data, dict):
        return data
    start = data.get("version")
    if not isinstance(start, int) or isinstance(start, bool) or start >= current:
        return data
    steps = [table.get(version) for version in range(start, current)]
    if any(step is None for step in steps):
        return data
    migrated = copy.deepcopy(data)
    for step in steps:
        assert step is not None
        migrated = step.apply(migrated)
        migrated["version"] = step.from_version + 1
    changes = "; ".join(step.summary for step in steps if step is not None)
    warnings.warn(
        SpecMigrated(
            f"{file or 'the spec'} is in spec format {start}, read as format {current}: "
            f"{changes}. Make these changes in the file and set `version: {current}` to "
            "silence this notice."
        ),
        stacklevel=2,
    )
    return migrated
