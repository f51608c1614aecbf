"""Checks beyond the invalid-spec corpus: salvage, saved states, files, clean-up.

The checks that generate a project (template names, a failed generation) are in
tests/system/test_generation.py.
"""

from __future__ import annotations

from pathlib import Path

import dspy
import pytest

from dspy_forge.render.cleanup import removed_on_failure
from dspy_forge.spec.errors import SpecInvalid
from dspy_forge.spec.loader import MAX_BYTES, load_spec, load_spec_text

BASE = """
version: 1
service: {name: demo}
lm: {model: openai/gpt-4o-mini}
"""


def errors_of(text: str, base_dir: Path | None = None) -> dict[str, str]:
    with pytest.raises(SpecInvalid) as caught:
        load_spec_text(text, base_dir=base_dir)
    return {error.dotted: error.message for error in caught.value.errors}


def test_broken_programs_do_not_hide_broken_signatures_and_tools() -> None:
    errors = errors_of(
        BASE
        + """
signatures:
  Ask: {inputs: {question: str}, outputs: {answer: "lst[str]"}}
tools:
  search: {description: Search., args: {query: strr}}
programs:
  qa: {module: Predikt, signature: Ask}
"""
    )
    assert set(errors) == {
        "programs.qa.module",
        "signatures.Ask.outputs.answer.type",
        "tools.search.args.query.type",
    }
    assert errors["signatures.Ask.outputs.answer.type"].endswith("did you mean list[...]?")
    assert errors["tools.search.args.query.type"].endswith("did you mean 'str'?")


def test_a_broken_definition_is_not_also_reported_as_missing() -> None:
    errors = errors_of(
        BASE
        + """
signatures:
  Ask: {inputs: {question: str}, outputs: {answer: str}, extra: 1}
tools:
  search: {args: {query: str}}
programs:
  agent: {module: ReAct, signature: Ask, tools: [search]}
  other: {module: ReAct, signature: Asks, tools: [serch]}
"""
    )
    assert set(errors) == {
        "signatures.Ask.extra",
        "tools.search",  # its description is missing
        "programs.other.signature",
        "programs.other.tools[0]",
    }
    assert errors["programs.other.signature"].endswith("did you mean 'Ask'?")
    assert errors["programs.other.tools[0]"].endswith("did you mean 'search'?")


def test_a_missing_section_does_not_hide_the_others() -> None:
    errors = errors_of(
        """
version: 1
programs:
  qa: {module: Predict, signature: "question -> answer", stream: [{field: answr}]}
"""
    )
    assert set(errors) == {"(document)", "programs.qa.stream[0].field"}


def test_merge_keys_may_be_overridden_but_own_keys_not_repeated() -> None:
    spec = (
        BASE
        + """
programs:
  one: &base {module: Predict, signature: "question -> answer"}
  two: {<<: *base, module: ChainOfThought}
"""
    )
    loaded = load_spec_text(spec)
    assert [(p.name, p.module) for p in loaded.model.programs] == [
        ("one", "Predict"),
        ("two", "ChainOfThought"),
    ]
    repeated = spec.replace("module: ChainOfThought}", "module: ChainOfThought, module: ReAct}")
    assert errors_of(repeated) == {
        "programs.two.module": "duplicate key 'module'; each key may appear once"
    }


def test_a_text_file_that_is_too_large_or_not_utf8_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * MAX_BYTES, encoding="utf-8")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"version: 1\ntitle: caf\xe9\n")
    for path, message in (
        (big, "larger than"),
        (latin, "not UTF-8"),
        (tmp_path, "is a directory"),
        (tmp_path / "none.yaml", "no such file"),
    ):
        with pytest.raises(SpecInvalid) as caught:
            load_spec(path)
        [error] = caught.value.errors
        assert error.file == str(path) and message in error.message


def test_one_line_text_refuses_every_line_break() -> None:
    for sep in ("\\n", "\\r", "\\x85", "\\u2028", "\\u2029"):
        errors = errors_of(
            f'version: 1\nservice: {{name: demo, title: "a{sep}b"}}\n'
            "lm: {model: m}\nprograms: {qa: {module: Predict, signature: 'q -> a'}}\n"
        )
        assert list(errors) == ["service.title"], sep


def saved(module: dspy.Module, path: Path) -> Path:
    module.save(str(path))
    return path


@pytest.mark.parametrize(
    ("module", "built"),
    [
        ("Predict", lambda: dspy.Predict("question, context -> answer")),
        ("ChainOfThought", lambda: dspy.ChainOfThought("question, context -> answer")),
        ("ReAct", lambda: dspy.ReAct("question, context -> answer", tools=[lambda query: query])),
    ],
)
def test_saved_state_must_fit_the_program(module: str, built: object, tmp_path: Path) -> None:
    saved(built(), tmp_path / "state.json")  # type: ignore[operator]
    tools = "tools: [search]" if module == "ReAct" else ""
    spec = f"""{BASE}
tools: {{search: {{description: Search., args: {{query: str}}}}}}
programs:
  fits: {{module: {module}, signature: "question, context -> answer", state: state.json, {tools}}}
  narrower: {{module: {module}, signature: "question -> answer", state: state.json, {tools}}}
"""
    errors = errors_of(spec, base_dir=tmp_path)
    assert list(errors) == ["programs.narrower.state"]
    assert "fields" in errors["programs.narrower.state"]
    other = "ChainOfThought" if module != "ChainOfThought" else "Predict"
    wrong = spec.replace(f"module: {module}", f"module: {other}").replace(tools, "")
    assert "programs.fits.state" in errors_of(wrong, base_dir=tmp_path)


def test_clean_up_never_touches_what_was_there(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(RuntimeError), removed_on_failure(out):
        (out / "new.txt").write_text("half", encoding="utf-8")
        (out / "new").mkdir()
        raise RuntimeError("generation failed")
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
