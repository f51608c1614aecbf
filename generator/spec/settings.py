"""The generated service's settings, as the template declares them.

Notes:
1. ``templates/_settings.yml`` is the one home of every setting: its name,
   type, default, bounds and description. The template renders ``settings.py``,
   ``.env.example`` and the README's table from it, so it must live in the
   template (a project's plain ``copier update`` renders the new template with
   the answers of an older one, which hold none of this). The spec contract
   reads it here for the settings the spec's ``server`` section can set: their
   defaults, bounds and descriptions; the contract keeps only the types (the
   spec's stricter ones, such as an origin pattern).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

import yaml
from pydantic import Field

from dspy_forge.paths import template_root

DECLARATION = "templates/_settings.yml"
BOUNDS = ("gt", "ge", "lt", "le")


@dataclass(frozen=True)
class Setting:
    """One setting of the generated service, as declared."""

    name: str
    group: str
    type: str
    default: Any
    doc: str
    spec: str | None = None  # its path under the spec's `server`, e.g. "auth.required"
    limit: str | None = None  # the RunLimits field it fills
    list: bool = False
    bounds: dict[str, float] = field(default_factory=dict)

    @property
    def env(self) -> str:
        return self.name.upper()


@cache
def declared() -> tuple[Setting, ...]:
    """Every setting, in the declaration's order."""
    data = yaml.safe_load((template_root() / DECLARATION).read_text("utf-8"))
    settings = []
    for entry in data["settings"]:
        bounds = {bound: entry.pop(bound) for bound in BOUNDS if bound in entry}
        settings.append(Setting(**entry, bounds=bounds))
    return tuple(settings)


def by_spec_path() -> dict[str, Setting]:
    """The settings the spec can set, by their path under ``server``."""
    return {setting.spec: setting for setting in declared() if setting.spec}


def spec_field(path: str) -> Any:
    """The contract field for the spec's ``server.<path>``: declared default, bounds and doc."""
    setting = by_spec_path()[path]
    return Field(setting.default, description=setting.doc, **setting.bounds)
