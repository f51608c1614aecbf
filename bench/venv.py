"""``python -m bench.venv``: a virtual environment of another Python for ``bench.ab``'s ``python:``.

    .venv/bin/python -m bench.venv --python /root/.pyenv/versions/3.12.1/bin/python \\
        --out .venvs/py312
    .venv/bin/python -m bench.ab --program qa py311=head py312=head,python:.venvs/py312/bin/python

It installs what a generated service depends on (its ``pyproject.toml``, with the ``client``
extra that the load client and :mod:`bench.inprocess` use), each at the version installed in
the bench's own environment, so that two variants differ by their interpreter alone. The
project itself is not installed: the servers and the in-process runs import it from the
generated ``src/`` on ``PYTHONPATH``, as every variant does.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import tomllib
from importlib import metadata
from pathlib import Path

from bench.servers import PROGRAMS, generate_project

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def pinned(requirement: str) -> str:
    """``requirement`` at the version this environment has: ``name==X`` (its marker kept)."""
    match = NAME.match(requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    name = match.group(0)
    _, semicolon, marker = requirement.partition(";")
    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        return requirement  # not installed here (its marker excludes this platform)
    return f"{name}=={version}" + (f";{marker}" if semicolon else "")


def requirements(project: Path) -> list[str]:
    """A generated project's dependencies and its ``client`` extra, pinned."""
    table = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [*table["dependencies"], *table["optional-dependencies"]["client"]]
    return [pinned(requirement) for requirement in wanted]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.venv", description=__doc__)
    parser.add_argument("--python", required=True, help="the interpreter to build it with")
    parser.add_argument("--out", type=Path, required=True, help="the environment's folder")
    parser.add_argument("--program", choices=sorted(PROGRAMS), default="qa")
    args = parser.parse_args(argv)
    if args.out.exists():
        parser.error(f"--out {args.out} exists: give a new folder (nothing is overwritten)")
    spec = PROGRAMS[args.program].spec
    with tempfile.TemporaryDirectory() as scratch:
        wanted = requirements(generate_project(spec, Path(scratch) / spec).path)
    subprocess.run([args.python, "-m", "venv", str(args.out)], check=True)
    pip = [str(args.out / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *wanted], check=True)
    print(f"{args.out / 'bin' / 'python'}: {len(wanted)} packages, as in {sys.prefix}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
