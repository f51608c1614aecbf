"""The template's source and the git workspace Copier renders it from.

Notes:
1. Copier versions a template by the git tags of the repository that holds
   ``copier.yml``, and a project records that repository (``_src_path``) and
   the version it was rendered from (``_commit``). dspy-forge never renders
   straight from where its template lives: it first builds a throwaway
   *template workspace*, a git repository holding the version to render and
   every tag of the template's source. An installed wheel (a plain folder, no
   git) becomes a commit tagged ``v<version>``; a checkout with uncommitted
   template changes becomes a commit on top of its ``HEAD`` whose hash depends
   only on those changes, so that the same changes give the same ``_commit``
   and an update can find that version again. The project then records
   ``TemplateSource.record``, not the workspace.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from packaging.version import InvalidVersion, Version

from dspy_forge import __version__
from dspy_forge.paths import template_root

ANSWERS_FILE = ".copier-answers.yml"
# Where releases of the template are published: copier.yml at the root, tags v<version>.
TEMPLATE_REPOSITORY = "https://github.com/dspy-forge/dspy-forge.git"
# The paths of a template checkout that Copier reads (copier.yml names `templates/`).
TEMPLATE_PATHS = ("copier.yml", "templates")
# Set to use another copy of the template (a path or git URL), and optionally its version.
SOURCE_ENV = "DSPY_FORGE_TEMPLATE"
REF_ENV = "DSPY_FORGE_TEMPLATE_REF"


class RenderError(Exception):
    """Generation failed after the spec was accepted."""


@dataclass(frozen=True)
class TemplateSource:
    """Where the template is read from, which version, and what projects record.

    ``location`` is a git repository (a path or URL), or a plain folder when
    ``packaged``. ``ref`` is ``"HEAD"`` (a checkout as it is on disk, uncommitted
    changes included), a tag or commit, or None for the latest version tag.
    ``record`` is written as ``_src_path``; a packaged folder is published there
    with the tag ``ref``.
    """

    location: str
    ref: str | None
    record: str
    packaged: bool = False


def template_source() -> TemplateSource:
    """The template this dspy-forge renders: $DSPY_FORGE_TEMPLATE, its checkout, or its wheel."""
    override = os.environ.get(SOURCE_ENV, "").strip()
    if override:
        path = Path(override).expanduser()
        location = str(path.resolve()) if path.exists() else override
        return TemplateSource(location, os.environ.get(REF_ENV, "").strip() or None, location)
    root = template_root()
    if (root / ".git").exists():
        return TemplateSource(str(root), "HEAD", str(root))
    return TemplateSource(str(root), f"v{__version__}", TEMPLATE_REPOSITORY, packaged=True)


def git(
    *args: str,
    cwd: Path | str | None = None,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run git without prompts, hooks, signing or the caller's repository variables."""
    full_env = {k: v for k, v in os.environ.items() if k not in _GIT_REPO_VARIABLES}
    full_env.update(_GIT_IDENTITY, GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0")
    full_env.update(env or {})
    result = subprocess.run(
        ["git", "-c", "core.hooksPath=" + os.devnull, "-c", "commit.gpgSign=false", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        raise RenderError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result


_GIT_REPO_VARIABLES = frozenset({"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX"})
_GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "dspy-forge",
    "GIT_AUTHOR_EMAIL": "dspy-forge@localhost",
    "GIT_COMMITTER_NAME": "dspy-forge",
    "GIT_COMMITTER_EMAIL": "dspy-forge@localhost",
}


@dataclass(frozen=True)
class Workspace:
    """A git repository holding the template version to render (see note 1)."""

    path: Path
    ref: str  # a tag or commit, never HEAD (Copier would treat HEAD as a draft)


@contextmanager
def template_workspace(source: TemplateSource) -> Iterator[Workspace]:
    """Build the template workspace for ``source`` in a temporary folder (note 1)."""
    with tempfile.TemporaryDirectory(prefix="dspy-forge-template-") as tmp:
        path = Path(tmp) / "template"
        if source.packaged:
            ref = _workspace_from_folder(Path(source.location), path, source.ref)
        else:
            ref = _workspace_from_git(source, path)
        yield Workspace(path, ref)


def _workspace_from_folder(folder: Path, path: Path, tag: str | None) -> str:
    path.mkdir()
    git("init", "-q", cwd=path)
    for name in TEMPLATE_PATHS:
        if (folder / name).is_dir():
            shutil.copytree(folder / name, path / name, ignore=_PYTHON_CACHES)
        else:
            shutil.copy2(folder / name, path / name)
    git("add", "-A", cwd=path)
    _commit(path, f"dspy-forge template {tag}", date="@0 +0000")
    if tag:
        git("tag", tag, cwd=path)
        return tag
    return _head(path)


_PYTHON_CACHES = shutil.ignore_patterns("__pycache__", "*.py[co]")


def _workspace_from_git(source: TemplateSource, path: Path) -> str:
    result = git("clone", "-q", "--no-checkout", "--", source.location, str(path), check=False)
    if result.returncode != 0:
        raise RenderError(
            f"cannot read the template from {source.location}: {result.stderr.strip()}"
        )
    if source.ref not in (None, "HEAD"):
        git("checkout", "-q", "-f", source.ref, cwd=path)
        return source.ref
    git("checkout", "-q", "-f", "HEAD", cwd=path)
    if source.ref is None:
        return latest_tag(path) or _head(path)
    local = Path(source.location)
    if local.is_dir() and _template_is_dirty(local):
        _commit_working_tree(local, path)
    return _head(path)


def _template_is_dirty(checkout: Path) -> bool:
    status = git(
        "status", "--porcelain", "--untracked-files=all", "--", *TEMPLATE_PATHS, cwd=checkout
    )
    return bool(status.stdout.strip())


def _commit_working_tree(checkout: Path, path: Path) -> None:
    """Commit the checkout's template as it is on disk, reproducibly (note 1)."""
    listed = git(
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
        "--",
        *TEMPLATE_PATHS,
        cwd=checkout,
    ).stdout.split("\0")
    git("rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", *TEMPLATE_PATHS, cwd=path)
    for name in TEMPLATE_PATHS:
        target = path / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    for name in filter(None, listed):
        origin = checkout / name
        if origin.is_file() or origin.is_symlink():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, path / name, follow_symlinks=False)
    git("add", "-A", "--", *TEMPLATE_PATHS, cwd=path)
    date = git("log", "-1", "--format=@%ct +0000", cwd=path).stdout.strip()
    _commit(path, "dspy-forge: uncommitted template changes", date=date)


def _commit(path: Path, message: str, *, date: str) -> None:
    """Commit everything staged with a fixed identity and date: same content, same hash."""
    git(
        "commit",
        "-q",
        "--no-verify",
        "--allow-empty",
        "-m",
        message,
        cwd=path,
        env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date},
    )


def _head(path: Path) -> str:
    return git("rev-parse", "HEAD", cwd=path).stdout.strip()


def latest_tag(path: Path) -> str | None:
    """The highest tag that is a final PEP 440 version, as Copier picks it."""
    best: tuple[Version, str] | None = None
    for tag in git("tag", "--list", cwd=path).stdout.split():
        try:
            version = Version(tag)
        except InvalidVersion:
            continue
        if not version.is_prerelease and (best is None or version > best[0]):
            best = (version, tag)
    return best[1] if best else None


def record_source(project: Path, src_path: str) -> None:
    """Write ``src_path`` as the project's ``_src_path`` answer, leaving the rest as it is."""
    record_answer(project, "_src_path", src_path)


def record_answer(project: Path, key: str, value: str) -> None:
    """Write ``value`` as the project's top-level ``key`` answer, leaving the rest as it is."""
    answers = project / ANSWERS_FILE
    text = answers.read_text(encoding="utf-8")
    line = yaml.safe_dump({key: value}, width=10_000).strip()
    pattern = rf"^{re.escape(key)}:.*$"
    new, count = re.subn(pattern, lambda _: line, text, count=1, flags=re.MULTILINE)
    if count != 1:
        raise RenderError(f"{answers} records no {key}")
    answers.write_text(new, encoding="utf-8")
