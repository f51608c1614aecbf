"""The three servers under test, each a uvicorn process on loopback against one fake LM.

- ``service``: the project dspy-forge generates from specs/ (tool bodies filled in as a
  user would), served by :func:`dspy_forge.dev.devserver.running_service`, one process per spec;
- ``baseline``: :mod:`bench.baseline_app`, the research note's hand-written pattern;
- ``floor``: :mod:`bench.floor_app`, the fake LM's stream relayed with no DSPy.

All of them run with the same uvicorn command line (``dspy_forge.dev.devserver.app_command``:
one worker, ``--no-access-log``, uvicorn's default loop and HTTP parser) and the same
interpreter.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dspy_forge.dev.devserver import app_command, fake_lm_env, free_port, running_service, serving
from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"

# The tool bodies a user writes after generating (shared with tests/conftest.py).
EXAMPLE_TOOLS = SPECS / "tools"


@dataclass(frozen=True)
class Program:
    """A benchmarked program: its spec, and the field whose final value the stream carries."""

    name: str
    spec: str
    final_field: str | None  # the listened field when it is a final output (qa's answer)


PROGRAMS: dict[str, Program] = {
    "qa": Program("qa", "qa", "answer"),
    "agent": Program("agent", "research-agent", None),
}

SERVERS = ("service", "baseline", "floor")

# The generated service's admission limit (default 100 runs, then 503) is lifted: the
# benchmark measures how many streams it holds, not where it starts refusing.
SERVICE_ENV = {"MAX_CONCURRENT_RUNS": "100000", "LOG_LEVEL": "WARNING"}

# Every process of the suite: DSPy must not look for model metadata on the network.
BASE_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "true", "PYTHONUNBUFFERED": "1"}

# The model every server asks the fake LM for: the specs' own model. DSPy looks the model up
# in its metadata table on every LM call (capabilities, price); for a name it does not know,
# such as devserver's ``openai/fake-model``, that is a scan of the whole table, about 1 ms of
# CPU per call that no real deployment pays, so the servers keep the spec's model name.
MODEL = "openai/gpt-4o-mini"


def lm_env(api_base: str) -> dict[str, str]:
    """``LM_*`` variables that point a server (any of the three) at the fake LM."""
    return {**fake_lm_env(api_base), "LM_MODEL": MODEL}


@dataclass(frozen=True)
class Project:
    """A generated project with its tools filled in."""

    path: Path
    package: str


@dataclass(frozen=True)
class Server:
    """A server under test."""

    name: str
    url: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


def generate_project(spec_name: str, out: Path) -> Project:
    """Generate ``specs/<spec_name>.yaml`` into ``out`` and fill its tool bodies."""
    loaded = load_spec(SPECS / f"{spec_name}.yaml")
    out = out.resolve()
    if out.exists():
        shutil.rmtree(out)  # a project of an earlier bench run
    project = generate(loaded, out)
    if (EXAMPLE_TOOLS / spec_name).is_dir():
        tools = project / "src" / loaded.model.package / "tools"
        shutil.copytree(EXAMPLE_TOOLS / spec_name, tools, dirs_exist_ok=True)
    return Project(project, loaded.model.package)


def inprocess(
    project: Project,
    program: str,
    api_base: str,
    *args: str,
    env: dict[str, str] | None = None,
    wrapper: Sequence[str] = (),
    python: str | None = None,
) -> dict[str, Any]:
    """Run :mod:`bench.inprocess` in a subprocess against the fake LM; its JSON answer.

    ``env``: settings of the project's own (``LM_MAX_CONNECTIONS``), as a service gets them;
    ``wrapper``: a command that runs it (``valgrind ...``, :mod:`bench.instructions`);
    ``python``: the interpreter, if not this one (a variant's ``python:``, :mod:`bench.ab`).
    """
    env = {**os.environ, **BASE_ENV, **lm_env(api_base), "PYTHONPATH": str(ROOT), **(env or {})}
    command = [
        *wrapper,
        python or sys.executable,
        "-m",
        "bench.inprocess",
        args[0],
        "--project",
        str(project.path),
        "--package",
        project.package,
        "--program",
        program,
        *args[1:],
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"bench.inprocess {args[0]} failed:\n{result.stderr[-3000:]}")
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def inprocess_batches(
    project: Project,
    program: str,
    api_base: str,
    count: int,
    concurrency: int,
    *options: str,
    repeat: int = 1,
    env: dict[str, str] | None = None,
    wrapper: Sequence[str] = (),
    python: str | None = None,
) -> list[dict[str, Any]]:
    """``repeat`` timed batches of ``count`` in-process runs, ``concurrency`` at a time."""
    answer = inprocess(
        project,
        program,
        api_base,
        "run",
        "--count",
        str(count),
        "--concurrency",
        str(concurrency),
        "--repeat",
        str(repeat),
        *options,
        env=env,
        wrapper=wrapper,
        python=python,
    )
    batches: list[dict[str, Any]] = answer["batches"]
    return batches


def inprocess_batch(
    project: Project,
    program: str,
    api_base: str,
    count: int,
    concurrency: int,
    *options: str,
    env: dict[str, str] | None = None,
    wrapper: Sequence[str] = (),
    python: str | None = None,
) -> dict[str, Any]:
    """One timed batch of ``count`` in-process runs, ``concurrency`` at a time: its figures."""
    batches = inprocess_batches(
        project,
        program,
        api_base,
        count,
        concurrency,
        *options,
        env=env,
        wrapper=wrapper,
        python=python,
    )
    return batches[-1]


@contextlib.contextmanager
def serve_app(
    target: str, env: dict[str, str], log: IO[bytes] | None, timeout: float = 60
) -> Iterator[Server]:
    """Serve ``module:attr`` from this checkout with the same uvicorn command as a service."""
    host, port = "127.0.0.1", free_port()
    environment = {**BASE_ENV, "PYTHONPATH": str(ROOT), **env}
    with serving(
        app_command(target, host, port),
        f"http://{host}:{port}",
        cwd=ROOT,
        env=environment,
        log=log,
        startup_timeout=timeout,
    ) as running:
        yield Server(target, running.url, running.process)


@contextlib.contextmanager
def start(
    server: str,
    program: str,
    api_base: str,
    projects: dict[str, Project],
    prompts_file: Path,
    log: IO[bytes] | None = None,
) -> Iterator[Server]:
    """Serve ``program`` with ``server`` (one of :data:`SERVERS`) on ``api_base``."""
    env = lm_env(api_base)
    if server == "service":
        project = projects[PROGRAMS[program].spec]
        service_env = {**BASE_ENV, **env, **SERVICE_ENV}
        with running_service(project.path, project.package, service_env, log=log) as running:
            yield Server("service", running.url, running.process)
    elif server == "baseline":
        with serve_app("bench.baseline_app:app", env, log) as running:
            yield running
    elif server == "floor":
        env["FLOOR_PROMPTS"] = str(prompts_file)
        with serve_app("bench.floor_app:app", env, log) as running:
            yield running
    else:
        raise ValueError(f"unknown server {server!r}")
