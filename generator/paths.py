"""Where dspy-forge's own files are: the Copier template, in a checkout or a wheel."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent  # dspy_forge


def template_root() -> Path:
    """The folder holding ``copier.yml``: the source checkout, or the installed copy."""
    for candidate in (PACKAGE_DIR.parent, PACKAGE_DIR / "_template"):
        if (candidate / "copier.yml").is_file() and (candidate / "templates").is_dir():
            return candidate
    raise FileNotFoundError("dspy-forge's Copier template is missing from this installation")
