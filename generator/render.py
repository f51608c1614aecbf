"""Render a validated spec into a project through Copier's API.

Copier owns the writing of files (and later their three-way updates); this
module only prepares its data, points it at the template and copies the saved
program states that the spec names.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import copier

from dspy_forge.loader import LoadedSpec
from dspy_forge.view import render_data

PACKAGE_DIR = Path(__file__).resolve().parent


def template_root() -> Path:
    """The folder holding ``copier.yml``: the source checkout, or the installed copy."""
    for candidate in (PACKAGE_DIR.parent, PACKAGE_DIR / "_template"):
        if (candidate / "copier.yml").is_file() and (candidate / "templates").is_dir():
            return candidate
    raise FileNotFoundError("dspy-forge's Copier template is missing from this installation")


class RenderError(Exception):
    """Generation failed after the spec was accepted."""


def generate(loaded: LoadedSpec, out: Path, *, safety_format: bool = True) -> Path:
    """Render ``loaded`` into ``out`` (a new or empty folder) and return it.

    ``safety_format=False`` leaves Copier's output as rendered, for tests that
    prove the templates emit formatted code on their own.
    """
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RenderError(f"{out} exists and is not an empty folder; choose a new --out")
    model = loaded.model
    with warnings.catch_warnings():
        # A source checkout with uncommitted template changes is fine while developing.
        warnings.simplefilter("ignore")
        copier.run_copy(
            str(template_root()),
            str(out),
            data={"service": render_data(model)},
            defaults=True,
            overwrite=True,
            quiet=True,
            unsafe=False,
            vcs_ref="HEAD",
        )
    for source, target in model.state_sources:
        destination = out / "src" / model.package / target
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
    if safety_format:
        _format(out)
    return out


def _format(project: Path) -> None:
    """Sort imports and format with ruff, as a safety net.

    The templates already emit formatted code (the smoke tests check the raw
    output), which keeps Copier's three-way updates free of formatting noise.
    """
    for command in (["check", "--select", "I", "--fix"], ["format"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--quiet", "--no-cache", str(project)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RenderError(
                f"ruff {command[0]} failed on the generated project:\n{result.stderr}"
            )
