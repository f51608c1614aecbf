"""``dspy-forge optimize``: compile a program, then point the spec's ``state:`` at the result.

The optimizing is the generated project's ``python -m <package> optimize`` (the
program built as the service builds it; see the template's ``runtime/optimize.py``),
run as ``dspy-forge eval`` runs eval: in a project the user names, or in one
generated into a temporary folder. It writes the state and its record straight
into the spec's folder, refusing to replace a file it did not write.

Then the spec is edited (:mod:`dspy_forge.spec.edit`) so that the next
``generate`` serves the optimized program. The edit is checked before it is
written: the edited text must load as a spec, differ from the old one in that
program's ``state`` alone, and accept the new state. When the spec cannot be
edited surely, it is left as it was and the message says what to add by hand;
when the score fell, nothing at all is written.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from dspy_forge.dev.evaluation import EvalError, run_in_project
from dspy_forge.spec.edit import EditRefused, set_program_state, yaml_scalar
from dspy_forge.spec.errors import SpecInvalid
from dspy_forge.spec.loader import LoadedSpec, load_spec_text

RECORD_SUFFIX = ".optimize.json"  # the project's runtime/optimize.py writes it


@dataclass(frozen=True)
class Outcome:
    """What a run did: the record it wrote, and what became of the spec."""

    record: dict[str, Any]
    state: Path
    pointed: bool  # the spec's state: names the new file now
    note: str  # one sentence on the spec: edited, already so, or what to do by hand


def default_out(loaded: LoadedSpec, program: str) -> Path:
    """``optimized/<program>.json`` in the spec's folder."""
    folder = loaded.path.parent if loaded.path is not None else Path.cwd()
    return folder / "optimized" / f"{program}.json"


def check_program(loaded: LoadedSpec, program: str) -> None:
    """Refuse, before anything runs, a program that is unknown or has nothing to learn from."""
    found = {p.name: p for p in loaded.model.programs}
    if program not in found:
        raise EvalError(f"no program {program!r} (the spec's: {', '.join(found)})")
    evaluation = found[program].evaluation
    if evaluation is None:
        raise EvalError(f"{program} has no examples and metric to score it: add them first")
    if evaluation.train_file is None:
        raise EvalError(
            f"{program} has no train examples: add `train:` to it (the same forms as "
            "`examples`); optimize learns from train and scores `examples` before and after"
        )


def _relative_to_spec(loaded: LoadedSpec, out: Path) -> str:
    """``out`` as the spec's ``state:`` writes it, or EvalError when the spec cannot name it."""
    folder = (loaded.path.parent if loaded.path is not None else Path.cwd()).resolve()
    target = out.resolve()
    if not target.is_relative_to(folder):
        raise EvalError(
            f"{out} is outside the spec's folder ({folder}); the spec's state: names a file "
            "in that folder or below it"
        )
    return str(PurePosixPath(*target.relative_to(folder).parts))


def run_optimize(
    loaded: LoadedSpec,
    program: str,
    optimizer: str,
    settings: Mapping[str, Any],
    *,
    out: Path | None = None,
    project: Path | None = None,
    threads: int = 4,
    progress: bool | None = None,
) -> Outcome | int:
    """Optimize ``program``; the outcome, or the project command's exit code if it failed.

    The project writes nothing when the score fell (exit 1): a state the spec
    serves is never replaced by a worse one, and the spec stays as it was.
    """
    check_program(loaded, program)
    out = out or default_out(loaded, program)
    value = _relative_to_spec(loaded, out)
    arguments = ["optimize", "--program", program, "--optimizer", optimizer]
    arguments += ["--out", str(out.resolve()), "--threads", str(threads), "--only-if-better"]
    for key, given in settings.items():
        if given is not None:
            arguments += [f"--{key.replace('_', '-')}", str(given)]
    if progress is not None:
        arguments.append("--progress" if progress else "--no-progress")
    code = run_in_project(loaded, project, arguments)
    if code != 0:
        return code
    record_file = out.with_name(out.stem + RECORD_SUFFIX)
    record = json.loads(record_file.read_text(encoding="utf-8"))
    pointed, note = _point(loaded, program, value)
    return Outcome(record, out, pointed, note)


def _point(loaded: LoadedSpec, program: str, value: str) -> tuple[bool, str]:
    """Set ``programs.<program>.state`` to ``value`` in the spec file, if it is right to."""
    by_hand = f"add `state: {yaml_scalar(value)}` under programs.{program} in the spec"
    if loaded.spec.programs[program].state == value:
        return True, f"the spec's programs.{program}.state names it already"
    path = loaded.path
    if path is None:
        return False, f"the spec was not read from a file: {by_hand}"
    text = path.read_bytes().decode("utf-8")
    try:
        edited = set_program_state(text, program, value)
        checked = load_spec_text(edited, file=str(path), base_dir=path.parent)
    except EditRefused as exc:
        return False, f"the spec was left as it was ({exc}): {by_hand}"
    except SpecInvalid as exc:
        problem = exc.errors[0].message if exc.errors else "it does not validate"
        return False, f"the spec was left as it was (edited, {problem}): {by_hand}"
    expected = loaded.spec.model_dump()
    expected["programs"][program]["state"] = value
    if checked.spec.model_dump() != expected:
        return False, f"the spec was left as it was (the edit changed more than state): {by_hand}"
    _replace(path, edited)
    return True, f"the spec's programs.{program}.state is {value} now"


def _replace(path: Path, text: str) -> None:
    """Write the spec whole or not at all, keeping its permissions (and a symlink to it)."""
    path = path.resolve()
    mode = path.stat().st_mode
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(text.encode("utf-8"))
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
