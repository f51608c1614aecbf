"""The wheel carries the Copier template: an installed dspy-forge generates what a checkout does.

The wheel is built for real (``pip wheel``) and unpacked, which is all that
installing a pure-Python wheel does, then run with nothing of the checkout on
its path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dspy-forge's wheel, built from this checkout and unpacked into a folder."""
    out = tmp_path_factory.mktemp("wheel")
    # Build from a copy of the files git would ship, so that no build/ folder is
    # left in the checkout (where stale files would leak into the next wheel).
    source = out / "source"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    for name in listed.stdout.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = out.glob("dspy_forge-*.whl")
    site = out / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def files(tree: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(tree)): path.read_bytes()
        for path in sorted(tree.rglob("*"))
        if path.is_file()
    }


def test_the_wheel_ships_every_template_file(installed: Path) -> None:
    shipped = installed / "dspy_forge" / "_template"
    assert (shipped / "copier.yml").read_bytes() == (ROOT / "copier.yml").read_bytes()
    ours = {k: v for k, v in files(ROOT / "templates").items() if "__pycache__" not in k}
    assert files(shipped / "templates") == ours


def test_an_installed_dspy_forge_generates_what_the_checkout_does(
    installed: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    env.pop("DSPY_FORGE_TEMPLATE", None)
    where = subprocess.run(
        [sys.executable, "-c", "import dspy_forge; print(dspy_forge.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(installed))  # not the checkout's editable install
    spec, out = ROOT / "specs" / "qa.yaml", tmp_path / "from-wheel"
    result = subprocess.run(
        [sys.executable, "-m", "dspy_forge", "generate", str(spec), "--out", str(out)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    from_checkout = generate(load_spec(ROOT / "specs" / "qa.yaml"), tmp_path / "from-checkout")

    wheel_files = files(tmp_path / "from-wheel")
    checkout_files = files(from_checkout)
    answers = ".copier-answers.yml"
    recorded = yaml.safe_load(wheel_files.pop(answers))
    checkout_files.pop(answers)
    assert wheel_files == checkout_files
    # The project records the public template repository at this version's tag.
    assert recorded["_src_path"] == "https://github.com/dspy-forge/dspy-forge.git"
    assert recorded["_commit"] == "v0.1.0"
