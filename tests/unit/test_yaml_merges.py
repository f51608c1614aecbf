"""YAML merge keys (``<<``) follow YAML's semantics; only true duplicates are refused.

A mapping's own keys win over merged ones, and in ``<<: [*a, *b]`` the earlier
mapping wins; merges nest (a merged mapping may itself merge, and a mapping
inside a merged one may too) without one reading changing another. A key given
twice in one mapping is still an error, located at the repeat.
"""

from __future__ import annotations

from dspy_forge.spec.loader import load_spec_text
from dspy_forge.spec.yamldoc import parse_yaml
from tests.unit.test_validation import BASE, errors_of


def test_a_merged_program_whose_lm_merges_another_anchor() -> None:
    loaded = load_spec_text(
        """version: 1
service: {name: demo}
lm: &lm {model: openai/gpt-4o-mini, temperature: 0.5, max_tokens: 100}
programs:
  one: &base
    module: Predict
    signature: "question -> answer"
    lm: {<<: *lm, temperature: 0}
  two:
    <<: *base
    module: ChainOfThought
  three:
    <<: *base
    lm: {<<: *lm, temperature: 1.5}
"""
    )
    programs = {p.name: p for p in loaded.model.programs}
    assert programs["one"].module == "Predict" and programs["two"].module == "ChainOfThought"
    for name, temperature in (("one", 0), ("two", 0), ("three", 1.5)):
        lm = programs[name].lm
        assert lm is not None and (lm.model, lm.temperature, lm.max_tokens) == (
            "openai/gpt-4o-mini",
            temperature,
            100,
        ), name
    assert loaded.model.lm.temperature == 0.5


def test_merging_never_changes_the_mapping_merged() -> None:
    parsed = parse_yaml(
        """a: &a {x: 1, y: 1}
b: &b {<<: *a, y: 2, z: 2}
c: {<<: *b, z: 3}
d: {<<: *b}
e: *b
"""
    )
    assert parsed.errors == []
    assert parsed.data == {
        "a": {"x": 1, "y": 1},
        "b": {"x": 1, "y": 2, "z": 2},
        "c": {"x": 1, "y": 2, "z": 3},
        "d": {"x": 1, "y": 2, "z": 2},
        "e": {"x": 1, "y": 2, "z": 2},
    }


def test_in_a_merge_list_the_earlier_mapping_wins_and_own_keys_win_over_all() -> None:
    parsed = parse_yaml(
        """a: &a {x: a, y: a}
b: &b {x: b, y: b, z: b, w: b}
c: {<<: [*a, *b], z: c}
d: {<<: [*b, *a]}
e: {<<: [*a, {w: inline, v: inline}], v: own}
"""
    )
    assert parsed.errors == []
    assert parsed.data is not None
    assert parsed.data["c"] == {"x": "a", "y": "a", "z": "c", "w": "b"}
    assert parsed.data["d"] == {"x": "b", "y": "b", "z": "b", "w": "b"}
    assert parsed.data["e"] == {"x": "a", "y": "a", "w": "inline", "v": "own"}


def test_true_duplicates_are_still_refused_where_they_repeat() -> None:
    spec = (
        BASE
        + """programs:
  one: &base {module: Predict, signature: "question -> answer"}
  two: {<<: *base, module: ChainOfThought, module: ReAct}
  three: {<<: *base, <<: *base}
"""
    )
    errors = errors_of(spec)
    assert errors["programs.two.module"] == "duplicate key 'module'; each key may appear once"
    assert errors["programs.three.<<"].startswith("duplicate key '<<'")
    assert "<<: [*a, *b]" in errors["programs.three.<<"]
    parsed = parse_yaml("a: &a {x: 1, x: 2}\nb: {<<: *a}\n")
    assert [(e.dotted, e.location) for e in parsed.errors] == [("a.x", parsed.errors[0].location)]
    assert parsed.errors[0].location is not None and parsed.errors[0].location.line == 1


def test_merging_what_is_not_a_mapping_is_a_located_error() -> None:
    for source in ("3", "[1, 2]", "[*a, 3]", "!!python/name:os.system {}"):
        parsed = parse_yaml(f"a: &a {{x: 1}}\nb: {{<<: {source}, y: 2}}\nc: ok\n")
        assert parsed.data is not None and parsed.data["c"] == "ok", source
        [error] = parsed.errors
        assert error.location is not None and error.location.line == 2, source
        assert "mapping" in error.message, source


def test_a_mapping_merging_itself_is_refused() -> None:
    parsed = parse_yaml("a: &a {x: 1, <<: *a}\n")
    assert parsed.errors and "itself" in parsed.errors[0].message
