"""The throwaway git copy an update merges in, and how its result is read and applied.

An update never touches the project until Copier's merge has succeeded: it runs
in a copy (note 1 of :mod:`.update`), whose diff becomes the plan, and only
then are the changed files written back.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from dspy_forge.render.template import (
    git,
)

STATUS = {"A": "added", "M": "modified", "D": "deleted", "T": "modified"}

if TYPE_CHECKING:
    from dspy_forge.render.update import Plan


def work_copy(root: Path, work: Path) -> str:
    """Copy the project's committed files into a new repository at ``work`` (note 1)."""
    listed = git("ls-files", "-z", "--cached", "--", ".", cwd=root).stdout.split("\0")
    work.mkdir(parents=True)
    for name in filter(None, listed):
        origin = root / name
        if origin.is_file() or origin.is_symlink():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, work / name, follow_symlinks=False)
    git("init", "-q", cwd=work)
    git("add", "-A", "--force", cwd=work)
    git("commit", "-q", "--no-verify", "-m", "the project as committed", cwd=work)
    return git("rev-parse", "HEAD", cwd=work).stdout.strip()


def conflicted_files(work: Path) -> list[str]:
    unmerged = git("ls-files", "-u", "-z", cwd=work).stdout.split("\0")
    names = {entry.split("\t", 1)[1] for entry in unmerged if "\t" in entry}
    for path in work.rglob("*.rej"):
        names.add(path.relative_to(work).as_posix())
    return sorted(names)


def changed_names(work: Path, before: str, kind: str, *, renames: bool = False) -> list[str]:
    args = ["diff", "--cached", "--name-only", "-z", f"--diff-filter={kind}"]
    args.append("-M" if renames else "--no-renames")
    return [n for n in git(*args, before, cwd=work).stdout.split("\0") if n]


def work_diff(work: Path, *args: str) -> str:
    return git(
        "-c", "core.quotePath=false", "diff", "--no-color", "--no-ext-diff", "--no-renames",
        *args, cwd=work,
    ).stdout  # fmt: skip


def apply(plan: Plan, work: Path) -> None:
    """Write the work copy's changes into the project (note 1)."""
    for change in plan.changes:
        target = plan.project / change.path
        if change.status == "deleted":
            if target.is_file() or target.is_symlink():
                target.unlink()
            prune(target.parent, plan.project)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            target.unlink()
        shutil.copy2(work / change.path, target, follow_symlinks=False)


def prune(folder: Path, root: Path) -> None:
    while folder != root and folder.is_relative_to(root) and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
