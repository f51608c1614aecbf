"""Messages that say how to fix the mistake, and refused names that hide nothing else.

- A comma inside a ``{...}`` mapping ends a plain value, so the rest becomes a key
  of its own: the unknown-key error says to quote the value, and shows how.
- ``Literal[billing, bug]`` names no constants: the error shows the quoted form.
- A name that is refused (by its shape, or as a keyword, private or clashing
  name) does not stop the checks of what it names: one run reports them all.
"""

from __future__ import annotations

from dspy_forge.spec.yamldoc import parse_yaml
from tests.unit.test_validation import BASE, errors_of


def test_a_comma_in_a_flow_mapping_value_hints_to_quote_it() -> None:
    errors = errors_of(
        BASE
        + """signatures:
  Lookup:
    inputs: {order: {type: str, description: e.g. 'A-1001', the id}}
    outputs: {status: {type: str, description: Order status, e.g. 'shipped'.}}
programs:
  qa: {module: Predict, signature: Lookup}
"""
    )
    first = errors["signatures.Lookup.inputs.order.the id"]
    assert first.startswith("unknown key 'the id'")
    assert "a comma ends a value inside {...}" in first
    assert "quote the value" in first
    assert "description: \"e.g. 'A-1001', the id\"" in first
    second = errors["signatures.Lookup.outputs.status.e.g. 'shipped'."]
    assert "description: \"Order status, e.g. 'shipped'.\"" in second


def test_an_unknown_key_in_a_block_mapping_gets_no_quoting_hint() -> None:
    errors = errors_of(
        BASE + "programs:\n  qa:\n    module: Predict\n    signature: q -> a\n    the id:\n"
    )
    assert "comma" not in errors["programs.qa.the id"]


def test_only_a_key_after_a_plain_value_gets_the_quoting_hint() -> None:
    parsed = parse_yaml("a: {b, c}\nd: {e: 'quoted', f}\ng: {h: plain, i, j}\n")
    assert set(parsed.notes) == {("g", "i"), ("g", "j")}
    assert parsed.notes[("g", "j")].endswith('h: "plain, i, j"')


def test_bare_words_in_a_literal_suggest_quotes() -> None:
    errors = errors_of(
        BASE
        + """signatures:
  Triage:
    inputs: {ticket: str}
    outputs:
      kind: Literal[billing, bug]
      level: Literal[low, 2, "high"] | None
programs:
  qa: {module: Predict, signature: Triage}
"""
    )
    kind = errors["signatures.Triage.outputs.kind.type"]
    assert 'quote them: Literal["billing", "bug"]' in kind
    level = errors["signatures.Triage.outputs.level.type"]
    assert """quote them: Literal["low", 2, "high"]""" in level


def test_refused_names_do_not_hide_the_checks_of_what_they_name() -> None:
    errors = errors_of(
        BASE
        + """signatures:
  Ask-Me:
    inputs: {question: str}
    outputs: {answer: strr}
  _Hidden:
    inputs: {question: str}
    outputs: {answer: str}
tools:
  web-search: {description: Search., args: {query: strr}}
programs:
  my-prog:
    module: Predict
    signature: Nope
    status: {lm_start: "{modle}"}
  _under:
    module: ChainOfThought
    signature: _Hidden
    stream: [{field: answr}]
    status: {lm_start: "{modle}"}
  class:
    module: ReAct
    signature: Ask-Me
    tools: [web-search, serch]
    stream: [{field: next_thougt}]
"""
    )
    assert {
        # the names themselves
        "signatures.Ask-Me",
        "signatures._Hidden",
        "tools.web-search",
        "programs.my-prog",
        "programs._under",
        "programs.class",
        # and what was hidden behind them
        "signatures.Ask-Me.outputs.answer.type",
        "tools.web-search.args.query.type",
        "programs.my-prog.signature",
        "programs.my-prog.status.lm_start",
        "programs._under.stream[0].field",
        "programs._under.status.lm_start",
        "programs.class.tools[1]",
    } <= set(errors), sorted(errors)
    assert errors["programs.my-prog.signature"].startswith("no signature named 'Nope'")
    assert "did you mean" not in errors["programs.my-prog.signature"] or (
        "Ask-Me" in errors["programs.my-prog.signature"]
        or "_Hidden" in errors["programs.my-prog.signature"]
    )
    assert errors["programs._under.stream[0].field"].endswith("did you mean 'answer'?")
    assert errors["programs.class.tools[1]"].startswith("no tool named 'serch'")
    assert "stand" not in " ".join(errors.values())  # no stand-in name leaks into a message
