"""Saved states (``programs.<p>.state``) are read only from the spec's folder.

A state file is copied into the generated project, so a path that leads out of
the spec's folder (absolute, through ``..``, or through a symlink) is refused
before anything outside is opened: the message is the same whether the outside
file exists or not, and whatever it holds. A state nested past what ``json`` can
decode is a located error, through the command line too, never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dspy
import pytest

from dspy_forge.spec.errors import SpecInvalid
from dspy_forge.spec.loader import load_spec
from tests.unit.test_validation import BASE

DEPTH = 200_000


def spec_with_state(folder: Path, state: str) -> Path:
    spec = folder / "spec.yaml"
    spec.write_text(
        BASE + f'programs: {{qa: {{module: Predict, signature: "question -> answer", '
        f"state: {state!r}}}}}\n",
        encoding="utf-8",
    )
    return spec


def state_errors(spec: Path) -> list[str]:
    with pytest.raises(SpecInvalid) as caught:
        load_spec(spec)
    errors = caught.value.errors
    assert all(e.file == str(spec) and e.location is not None for e in errors), errors
    assert [e.dotted for e in errors] == ["programs.qa.state"], errors
    return [e.message for e in errors]


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """The spec's folder, and a folder beside it holding a valid state and other files."""
    inside, outside = tmp_path / "spec", tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    dspy.Predict("question -> answer").save(str(outside / "state.json"))
    dspy.Predict("question -> answer").save(str(inside / "state.json"))
    (outside / "notes.txt").write_text("not json", encoding="utf-8")
    return inside, outside


def test_a_relative_path_leading_outside_is_refused_alike_whether_it_exists(
    folders: tuple[Path, Path],
) -> None:
    inside, _ = folders
    messages = {
        state: state_errors(spec_with_state(inside, state))[0]
        for state in ("../outside/state.json", "../outside/missing.json", "../outside/notes.txt")
    }
    assert len(set(messages.values())) == 1, messages
    message = messages["../outside/state.json"]
    assert "outside the spec's folder" in message
    for revealing in ("no such file", "JSON", "fields", "predictor", "outside/"):
        assert revealing not in message


def test_an_absolute_path_is_refused_alike_whether_it_exists(folders: tuple[Path, Path]) -> None:
    inside, outside = folders
    messages = {
        state: state_errors(spec_with_state(inside, str(state)))[0]
        for state in (
            outside / "state.json",
            outside / "missing.json",
            inside / "state.json",  # even inside the folder: a spec names its files relatively
        )
    }
    assert len(set(messages.values())) == 1, messages
    assert "absolute" in next(iter(messages.values()))


def test_a_symlink_inside_the_folder_pointing_outside_counts_as_outside(
    folders: tuple[Path, Path],
) -> None:
    inside, outside = folders
    (inside / "link.json").symlink_to(outside / "state.json")
    (inside / "dangling.json").symlink_to(outside / "missing.json")
    (inside / "linked").symlink_to(outside, target_is_directory=True)
    messages = {
        state: state_errors(spec_with_state(inside, state))[0]
        for state in ("link.json", "dangling.json", "linked/state.json", "../outside/state.json")
    }
    assert len(set(messages.values())) == 1, messages


def test_paths_that_stay_inside_the_folder_are_accepted(folders: tuple[Path, Path]) -> None:
    inside, _ = folders
    (inside / "sub").mkdir()
    (inside / "sub" / "link.json").symlink_to(inside / "state.json")
    for state in ("state.json", "./state.json", "sub/../state.json", "sub/link.json"):
        loaded = load_spec(spec_with_state(inside, state))
        [(source, target)] = loaded.model.state_sources
        assert Path(source) == (inside / "state.json").resolve() and target == "state/qa.json"


def deep_state(folder: Path) -> Path:
    (folder / "deep.json").write_text("[" * DEPTH + "]" * DEPTH, encoding="utf-8")
    (folder / "deep-object.json").write_text('{"a":' * DEPTH + "1" + "}" * DEPTH, encoding="utf-8")
    return spec_with_state(folder, "deep.json")


def test_a_state_nested_200000_deep_is_a_located_error(tmp_path: Path) -> None:
    spec = deep_state(tmp_path)
    [message] = state_errors(spec)
    assert "nested too deeply" in message
    spec.write_text(spec.read_text(encoding="utf-8").replace("deep.json", "deep-object.json"))
    [message] = state_errors(spec)
    assert "nested too deeply" in message


@pytest.mark.parametrize("command", ["validate", "generate"])
def test_the_command_line_reports_a_deeply_nested_state_without_a_traceback(
    command: str, tmp_path: Path
) -> None:
    spec = deep_state(tmp_path)
    out = tmp_path / "project"
    args = [str(spec)] + (["--out", str(out)] if command == "generate" else [])
    result = subprocess.run(
        [sys.executable, "-m", "dspy_forge", command, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    assert f"{spec}:5:" in result.stderr and "programs.qa.state" in result.stderr
    assert not out.exists()
