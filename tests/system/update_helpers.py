"""Real git repositories for the update tests: a tagged template, a generated project, edits.

The template repository is a copy of this checkout's copier.yml and templates/,
tagged v1; ``release`` commits a change on top and tags it, as a maintainer
would. Every repository lives in the test's temporary folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from dspy_forge.render.generate import generate
from dspy_forge.render.template import TemplateSource
from dspy_forge.spec.loader import load_spec_text
from tests.conftest import ROOT

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Test User",
    "GIT_AUTHOR_EMAIL": "user@example.com",
    "GIT_COMMITTER_NAME": "Test User",
    "GIT_COMMITTER_EMAIL": "user@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}
PACKAGE = "research_agent"
PKG = f"src/{PACKAGE}"

SPEC_V1 = """\
version: 1
service:
  name: research-agent
  title: Research Agent
lm:
  model: openai/gpt-4o-mini
  api_key_env: OPENAI_API_KEY
tools:
  search:
    description: Search for information.
    args:
      query: {type: str, description: What to search for.}
  clock:
    description: The current time.
programs:
  agent:
    module: ReAct
    signature: "question -> answer"
    tools: [search, clock]
    max_iters: 5
    stream:
      - {field: next_thought, allow_reuse: true}
  qa:
    module: ChainOfThought
    signature: "question -> answer"
"""

# The spec a month later: `qa` removed, `summarize` added, the agent's `answer`
# renamed `reply`, and the `clock` tool no longer used.
SPEC_V2 = """\
version: 1
service:
  name: research-agent
  title: Research Agent
lm:
  model: openai/gpt-4o-mini
  api_key_env: OPENAI_API_KEY
tools:
  search:
    description: Search for information.
    args:
      query: {type: str, description: What to search for.}
programs:
  agent:
    module: ReAct
    signature: "question -> reply"
    tools: [search]
    max_iters: 5
    stream:
      - {field: next_thought, allow_reuse: true}
  summarize:
    module: Predict
    signature: "text -> summary"
"""

SEARCH_BODY = '''"""Our search tool."""


async def search(query: str) -> str:
    """Search for information."""
    return f"Results for: {query}"
'''
CLOCK_BODY = '''"""Our clock."""


async def clock() -> str:
    """The current time."""
    return "12:00"
'''
USER_TEST = f'''"""The user's own test of their tool."""

import asyncio

from {PACKAGE}.tools.search import search


def test_search_tool_is_implemented() -> None:
    assert asyncio.run(search("dspy")) == "Results for: dspy"
'''
README_LINE = "Owned by the search team; ask in #search."
ROUTES_LINE = "# Reviewed by the platform team."
# What v2 of the template changes: a generated file, the README, and the tool stub.
V2_MAIN_LINE = "TEMPLATE_GENERATION = 2"
V2_README_SECTION = "## Changes in template v2"
V2_STUB_LINE = "# A tool stub of template v2."


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"git {args}: {result.stderr}"
    return result.stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def template_repository(where: Path, tag: str = "v1") -> Path:
    """A git repository holding this checkout's template, committed and tagged ``tag``."""
    repo = where / "template"
    repo.mkdir(parents=True)
    shutil.copy2(ROOT / "copier.yml", repo / "copier.yml")
    shutil.copytree(
        ROOT / "templates",
        repo / "templates",
        ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"),
    )
    git(repo, "init", "-q")
    commit_all(repo, "template")
    git(repo, "tag", tag)
    return repo


def edit(path: Path, change: Callable[[str], str]) -> None:
    text = path.read_text(encoding="utf-8")
    changed = change(text)
    assert changed != text, f"the edit of {path} changed nothing"
    path.write_text(changed, encoding="utf-8")


def change_template_to_v2(repo: Path) -> None:
    """The template changes of v2, in the working tree of ``repo`` (not committed)."""
    templates = repo / "templates"
    edit(templates / "src/{{service.package}}/main.py", lambda t: t + f"{V2_MAIN_LINE}\n")
    edit(
        templates / "README.md.jinja",
        lambda t: t + f"\n{V2_README_SECTION}\n\nThe service reports its template version.\n",
    )
    [stub] = (templates / "src/{{service.package}}/tools").glob("*yield*.jinja")
    edit(stub, lambda t: f"{V2_STUB_LINE}\n{t}")


def release(repo: Path, tag: str, change: Callable[[Path], None] = change_template_to_v2) -> None:
    change(repo)
    commit_all(repo, f"release {tag}")
    git(repo, "tag", tag)


def git_source(repo: Path) -> TemplateSource:
    """The template as $DSPY_FORGE_TEMPLATE=repo gives it: the latest tag, recorded as repo."""
    return TemplateSource(str(repo), None, str(repo))


def generate_committed(
    spec_text: str, project: Path, source: TemplateSource, *, spec_dir: Path
) -> Path:
    """Generate ``spec_text`` into ``project`` and commit it in a new git repository."""
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "spec.yaml").write_text(spec_text, encoding="utf-8")
    generate(load_spec_text(spec_text, base_dir=spec_dir), project, source=source)
    git(project, "init", "-q")
    commit_all(project, "Generated by dspy-forge")
    return project


def make_user_edits(project: Path) -> None:
    """What a user does after generating: tools, a README line, a route comment, a test."""
    (project / PKG / "tools/search.py").write_text(SEARCH_BODY, encoding="utf-8")
    (project / PKG / "tools/clock.py").write_text(CLOCK_BODY, encoding="utf-8")
    edit(project / "README.md", lambda t: t.replace("\n", f"\n\n{README_LINE}\n", 1))
    edit(project / PKG / "routes.py", lambda t: t.replace('"""\n', f'"""\n\n{ROUTES_LINE}\n', 1))
    (project / "tests/test_search_tool.py").write_text(USER_TEST, encoding="utf-8")
    commit_all(project, "My work")


def assert_user_edits_intact(project: Path) -> None:
    assert (project / PKG / "tools/search.py").read_text(encoding="utf-8") == SEARCH_BODY
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert readme.count(README_LINE) == 1
    routes = (project / PKG / "routes.py").read_text(encoding="utf-8")
    assert routes.count(ROUTES_LINE) == 1
    assert (project / "tests/test_search_tool.py").read_text(encoding="utf-8") == USER_TEST


def assert_no_conflicts(project: Path) -> None:
    for path in project.rglob("*"):
        if ".git" in path.parts or not path.is_file():
            continue
        assert not path.name.endswith(".rej"), path
        text = path.read_text(encoding="utf-8", errors="replace")
        assert "<<<<<<<" not in text and ">>>>>>>" not in text, path


def disk_state(root: Path) -> dict[str, str]:
    """Every file under ``root`` (git's own included) by path, as a content hash."""
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }
