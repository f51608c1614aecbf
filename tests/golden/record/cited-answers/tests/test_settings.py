"""Every setting is documented in .env.example and the README, with its real default."""

import re
from pathlib import Path

from pydantic import SecretStr

from cited_answers.settings import Settings

PROJECT = Path(__file__).resolve().parents[1]
EXAMPLE_LINE = re.compile(r"^#? ?([A-Z][A-Z0-9_]*)=(.*)$")


def env_form(value: object) -> str:
    """A default as `.env` spells it: lists comma-separated, booleans lower-case."""
    if isinstance(value, list):
        return ",".join(v.get_secret_value() if isinstance(v, SecretStr) else v for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def test_env_example_lists_every_setting_with_its_default() -> None:
    lines = (PROJECT / ".env.example").read_text().splitlines()
    documented = dict(m.groups() for line in lines if (m := EXAMPLE_LINE.match(line)))
    for name, field in Settings.model_fields.items():
        assert name.upper() in documented, f"{name.upper()} is missing from .env.example"
        assert documented[name.upper()] == env_form(field.get_default(call_default_factory=True))


def test_readme_lists_every_setting() -> None:
    readme = (PROJECT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`{name.upper()}`" in readme, f"{name.upper()} is missing from README.md"
