"""Every string of a spec is bounded, and none may hold a bidirectional control.

Bidi controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C) make text
display in another order than it is read ("Trojan Source"); a spec string lands
in pyproject.toml, README.md, .copier-answers.yml and code, so they are refused
wherever they appear, with the other control characters, and the command line
prints them escaped. Each string slot has a length bound, declared in the spec
model (so docs/spec.md shows it); a key has one too.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from typer.testing import CliRunner

from dspy_forge.cli import app
from dspy_forge.spec.contract import Spec
from dspy_forge.spec.errors import SpecError, SpecInvalid
from dspy_forge.spec.loader import load_spec_text
from dspy_forge.spec.yamldoc import MAX_KEY_CHARS

BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
LONG = 200_000
MAX_TEXT = 20_000
runner = CliRunner()


def errors_of(data_or_text: dict[str, Any] | str) -> dict[str, str]:
    text = data_or_text if isinstance(data_or_text, str) else yaml.safe_dump(data_or_text)
    with pytest.raises(SpecInvalid) as caught:
        load_spec_text(text, file="spec.yaml")
    assert all(error.location is not None for error in caught.value.errors)
    return {error.dotted: error.message for error in caught.value.errors}


def spec_text(char: str) -> str:
    """A spec with ``char`` in many string slots and in a key; \\u escapes in double quotes."""
    c = f"\\u{ord(char):04x}"
    return f"""version: 1
service: {{name: demo, title: "Demo {c}Service", description: "about{c}"}}
lm: {{model: "openai/gpt-4o-mini{c}"}}
signatures:
  Ask:
    instructions: "Answer {c}briefly."
    inputs: {{question: {{type: str, description: "The {c}question"}}}}
    outputs: {{answer: "str{c}"}}
programs:
  qa:
    module: Predict
    signature: Ask
    description: "{c}evil"
    status: {{lm_start: "Thinking{c}"}}
    "state{c}": x
"""


@pytest.mark.parametrize("char", list(BIDI), ids=[f"U+{ord(c):04X}" for c in BIDI])
def test_bidi_controls_are_refused_in_every_string(char: str) -> None:
    errors = errors_of(spec_text(char))
    must = {
        "service.title",
        "service.description",
        "lm.model",
        "signatures.Ask.instructions",
        "signatures.Ask.inputs.question.description",
        "signatures.Ask.outputs.answer",
        "programs.qa.description",
        "programs.qa.status.lm_start",
        "programs.qa",  # the key
    }
    assert must <= set(errors), errors
    for where in must:
        assert f"bidirectional control character, U+{ord(char):04X}" in errors[where]


def test_raw_bidi_controls_in_the_file_are_refused_too() -> None:
    text = "version: 1\nservice: {name: demo, title: Demo \u202eecivreS}\nlm: {model: m\u2066}\n"
    text += "programs: {qa: {module: Predict, signature: 'q -> a'}}\n"
    errors = errors_of(text)
    assert {"service.title", "lm.model"} <= set(errors)


def test_the_command_line_prints_bidi_controls_escaped(tmp_path: Path) -> None:
    spec = tmp_path / "spec\u202egnp.yaml"  # even the file's name
    spec.write_text(
        spec_text("\u202e") + "  more:\n    module: Predikt\u2067\n    signature: 'q -> a'\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not set(result.output) & set(BIDI), result.output
    assert "spec\\u202egnp.yaml" in result.output


def test_other_command_line_errors_print_bidi_controls_escaped(tmp_path: Path) -> None:
    taken = tmp_path / "spec\u202e.yaml"
    taken.write_text("", encoding="utf-8")
    result = runner.invoke(app, ["init", str(taken)])
    assert result.exit_code == 1
    assert "\u202e" not in result.output and "spec\\u202e.yaml" in result.output


def test_rendered_errors_escape_every_unsafe_character() -> None:
    error = SpecError(("a",), "bad \u202e\u2066 text\x1b[31m\nnext \ud800", file="f\u200f.yaml")
    text = error.render()
    assert text == "f\\u200f.yaml: a: bad \\u202e\\u2066 text\\x1b[31m\\nnext \\ud800"


def string_slots(model: type[BaseModel]) -> dict[str, int | None]:
    """Every str the spec model accepts, by where it is, with its max_length (None: unbounded)."""
    found: dict[str, int | None] = {}
    seen: set[type[BaseModel]] = set()

    def bound(metadata: list[Any]) -> int | None:
        for item in metadata:
            if isinstance(item, FieldInfo):
                inner = bound(list(item.metadata))
                if inner is not None:
                    return inner
            if getattr(item, "max_length", None) is not None:
                return int(item.max_length)
        return None

    def visit(annotation: Any, metadata: list[Any], where: str) -> None:
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin is typing.Annotated:
            visit(args[0], [*metadata, *args[1:]], where)
        elif annotation is str:
            found[where] = bound(metadata)
        elif origin is typing.Literal:
            return
        elif origin is dict:
            visit(args[0], [], f"{where}.<key>")
            visit(args[1], [], f"{where}.<name>")
        elif origin is list:
            visit(args[0], metadata, f"{where}[]")
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in seen:
                seen.add(annotation)
                for name, info in annotation.model_fields.items():
                    visit(info.annotation, list(info.metadata), f"{annotation.__name__}.{name}")
        elif args:
            for arg in args:
                visit(arg, metadata, where)

    visit(Spec, [], "Spec")
    return found


def test_every_str_field_of_the_spec_model_has_a_length_bound() -> None:
    slots = string_slots(Spec)
    assert len(slots) > 25, slots  # the walk reaches every section
    unbounded = sorted(where for where, bound in slots.items() if bound is None)
    assert not unbounded, unbounded
    too_long = sorted(where for where, bound in slots.items() if bound and bound > MAX_TEXT)
    assert not too_long, too_long


def base() -> dict[str, Any]:
    return {
        "version": 1,
        "service": {"name": "demo"},
        "lm": {"model": "openai/gpt-4o-mini"},
        "signatures": {"Ask": {"inputs": {"question": "str"}, "outputs": {"answer": "str"}}},
        "tools": {"search": {"description": "Search.", "args": {"query": "str"}}},
        "programs": {
            "agent": {"module": "ReAct", "signature": "Ask", "tools": ["search"]},
        },
    }


# Where to put a long value, and a long value of the right shape for that slot.
SLOTS: dict[str, tuple[tuple[str | int, ...], str]] = {
    "service.name": (("service", "name"), "a" * LONG),
    "service.title": (("service", "title"), "a" * LONG),
    "service.description": (("service", "description"), "a" * LONG),
    "service.version": (("service", "version"), "1" * LONG),
    "lm.model": (("lm", "model"), "a" * LONG),
    "lm.api_key_env": (("lm", "api_key_env"), "A" * LONG),
    "lm.api_base": (("lm", "api_base"), "https://" + "a" * LONG),
    "signatures.Ask.instructions": (("signatures", "Ask", "instructions"), "a" * LONG),
    "signatures.Ask.inputs.question": (  # the shorthand: the value is the type
        ("signatures", "Ask", "inputs", "question"),
        "str" + " " * LONG,
    ),
    "signatures.Ask.inputs.question.type": (
        ("signatures", "Ask", "inputs", "question"),
        {"type": "str" + " " * LONG},
    ),
    "signatures.Ask.outputs.answer.description": (
        ("signatures", "Ask", "outputs", "answer"),
        {"description": "a" * LONG},
    ),
    "tools.search.description": (("tools", "search", "description"), "a" * LONG),
    "tools.search.returns": (("tools", "search", "returns"), "str" + " " * LONG),
    "tools.search.impl": (("tools", "search", "impl"), "tools.search:" + "a" * LONG),
    "programs.agent.signature": (("programs", "agent", "signature"), "q -> " + "a" * LONG),
    "programs.agent.description": (("programs", "agent", "description"), "a" * LONG),
    "programs.agent.state": (("programs", "agent", "state"), "a" * LONG + ".json"),
    "programs.agent.status.lm_start": (("programs", "agent", "status"), {"lm_start": "a" * LONG}),
    "programs.agent.stream[0].predictor": (
        ("programs", "agent", "stream"),
        [{"field": "answer", "predictor": "a" * LONG}],
    ),
    "programs.agent.lm.api_key_env": (("programs", "agent", "lm"), {"api_key_env": "A" * LONG}),
    "programs.agent.lm.api_base": (
        ("programs", "agent", "lm"),
        {"api_base": "https://" + "a" * LONG},
    ),
    "programs.agent.lm.model": (("programs", "agent", "lm"), {"model": "a" * LONG}),
    "server.cors.origins[0]": (("server",), {"cors": {"origins": ["https://" + "a" * LONG]}}),
    "server.cors.headers[0]": (("server",), {"cors": {"headers": ["A" * LONG]}}),
    "server.auth.open_paths[0]": (("server",), {"auth": {"open_paths": ["/" + "a" * LONG]}}),
}


def placed(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    data = base()
    target: Any = data
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value
    return data


@pytest.mark.parametrize("where", list(SLOTS))
def test_a_long_value_in_any_slot_is_a_located_error(where: str) -> None:
    errors = errors_of(placed(*SLOTS[where]))
    assert where in errors, errors
    message = errors[where]
    assert "at most" in message and "characters" in message, message
    assert len(message) < 500


def test_a_long_key_is_a_short_located_error() -> None:
    key = "k" * LONG
    errors = errors_of(placed(("service", key), "x"))
    assert list(errors) == ["service"], errors
    assert f"at most {MAX_KEY_CHARS} characters" in errors["service"]
    assert len(errors["service"]) < 500
