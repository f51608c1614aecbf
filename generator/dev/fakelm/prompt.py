"""Read the chat messages DSPy's adapters send to learn what answer the caller expects.

DSPy's ChatAdapter (and JSONAdapter) describe a signature in plain text: the system message lists
the input and output fields with their types, a note per output field gives its JSON schema or
its allowed values, and the last user message holds the input values and the order of the output
fields. A ReAct agent also lists its tools and their argument schemas in the instructions. The
fake LM needs exactly this to produce an answer the adapter parses, so this module recovers it.
The system message of a program is the same on every call, so its parse is cached.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from dspy_forge.dev.fakelm.fields import (
    FieldKind,
    OutputSpec,
    output_spec,
)

__all__ = [
    "FieldKind",
    "OutputSpec",
    "ParsedPrompt",
    "PromptShape",
    "ToolSpec",
    "message_text",
    "parse_messages",
    "parse_shape",
]

"""How a value is produced and written: prose, a number, a boolean, one of fixed choices, JSON."""

_INPUTS_HEADING = "Your input fields are:\n"
_OUTPUTS_HEADING = "Your output fields are:\n"
_STRUCTURE_HEADING = "All interactions will be structured in the following way"
_JSON_STRUCTURE_HEADING = "Outputs will be a JSON object with the following fields."
_CHAT_TRAILER = "Respond with the corresponding output fields"
_JSON_TRAILER = "Respond with a JSON object in the following order of fields:"
_PY_TYPE_PREFIX = " (must be formatted as a valid Python "

_FIELD_ENTRY = re.compile(r"^\d+\. `(\w+)` \(", re.MULTILINE)
_NOTE = re.compile(r"^\{(\w+)\} {8}# note: the value you produce (.+)$", re.MULTILINE)
_TOOL_LINE = re.compile(r"^\s*\(\d+\) (.+)$", re.MULTILINE)
_TOOL_ARGS = " It takes arguments "
_TRAILER_FIELD = re.compile(r"`(?:\[\[ ## )?(\w+)(?: ## \]\])?`")
_TRAJECTORY_STEP = re.compile(r"\[\[ ## tool_name_(\d+) ## \]\]")


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool a ReAct agent may call, with the JSON schema of each argument."""

    name: str
    args: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def required(self) -> tuple[str, ...]:
        """Arguments without a default value: a call must supply them."""
        return tuple(name for name, schema in self.args.items() if "default" not in schema)


@dataclass(frozen=True, slots=True)
class PromptShape:
    """What a program's system message says, independent of one call's input values."""

    input_names: tuple[str, ...] = ()
    outputs: tuple[OutputSpec, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    json_adapter: bool = False

    @property
    def is_react(self) -> bool:
        """Whether this is the step signature of ``dspy.ReAct`` (choose the next tool)."""
        names = {spec.name for spec in self.outputs}
        return {"next_thought", "next_tool_name", "next_tool_args"} <= names


@dataclass(frozen=True, slots=True)
class ParsedPrompt:
    """One request as the responder needs it: the shape, the input values, the output mode."""

    shape: PromptShape
    inputs: Mapping[str, str]
    trajectory_steps: int = 0
    json_mode: bool = False
    response_schema: Mapping[str, Any] | None = None
    demos: int = 0  # earlier assistant turns that show this signature's outputs


def _demos(messages: Sequence[Mapping[str, Any]], shape: PromptShape) -> int:
    """How many earlier assistant messages answer with this prompt's output fields.

    DSPy's adapters send each few-shot demo as a user message and an assistant
    message in the reply's layout (``[[ ## answer ## ]]``, or a JSON object),
    before the user message of this call.
    """
    names = [spec.name for spec in shape.outputs if spec.name != "reasoning"]
    if not names:
        return 0
    markers = [marker for name in names for marker in (f"[[ ## {name} ## ]]", f'"{name}"')]
    replies = [message_text(m) for m in messages[:-1] if m.get("role") == "assistant"]
    return sum(1 for text in replies if any(marker in text for marker in markers))


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a chat message whose content is a string or a list of content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return ""


def parse_messages(
    messages: Sequence[Mapping[str, Any]],
    response_format: Mapping[str, Any] | None = None,
) -> ParsedPrompt:
    """Parse an OpenAI ``messages`` list (and optional ``response_format``) sent by DSPy.

    The first system message describes the signature; the last user message holds the
    input values of this call (earlier user/assistant pairs are few-shot demos or history).
    """
    system = next((message_text(m) for m in messages if m.get("role") == "system"), "")
    user = next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
    shape = parse_shape(system)
    if not shape.outputs and user:
        shape = PromptShape(
            input_names=shape.input_names,
            outputs=_outputs_from_trailer(user),
            tools=shape.tools,
            json_adapter=_JSON_TRAILER in user,
        )
    inputs = _parse_inputs(user, shape.input_names)
    trajectory = inputs.get("trajectory", "")
    steps = 1 + max((int(n) for n in _TRAJECTORY_STEP.findall(trajectory)), default=-1)

    format_type = response_format.get("type") if response_format else None
    response_schema: Mapping[str, Any] | None = None
    if response_format and format_type == "json_schema":
        wrapper = response_format.get("json_schema")
        if isinstance(wrapper, Mapping) and isinstance(wrapper.get("schema"), Mapping):
            response_schema = wrapper["schema"]
    json_mode = (
        format_type in ("json_object", "json_schema") or shape.json_adapter or _JSON_TRAILER in user
    )
    return ParsedPrompt(
        shape=shape,
        inputs=inputs,
        trajectory_steps=steps,
        json_mode=json_mode,
        response_schema=response_schema,
        demos=_demos(messages, shape),
    )


@lru_cache(maxsize=512)
def parse_shape(system: str) -> PromptShape:
    """Parse a DSPy system message (ChatAdapter or JSONAdapter layout) into a PromptShape."""
    inputs_at = system.find(_INPUTS_HEADING)
    outputs_at = system.find(_OUTPUTS_HEADING)
    if outputs_at < 0:
        return PromptShape()
    structure_at = system.find(_STRUCTURE_HEADING, outputs_at)
    if structure_at < 0:
        structure_at = len(system)
    input_names: tuple[str, ...] = ()
    if 0 <= inputs_at < outputs_at:
        input_block = system[inputs_at + len(_INPUTS_HEADING) : outputs_at]
        input_names = tuple(name for name, _, _ in _field_entries(input_block))

    notes = _notes(system, structure_at)
    outputs = tuple(
        output_spec(name, type_name, constraints, notes.get(name))
        for name, type_name, constraints in _field_entries(
            system[outputs_at + len(_OUTPUTS_HEADING) : structure_at]
        )
    )
    tools: tuple[ToolSpec, ...] = ()
    tool_field = next((o for o in outputs if o.name == "next_tool_name"), None)
    if tool_field is not None and tool_field.choices:
        tools = _tools(system, tuple(str(c) for c in tool_field.choices))
    return PromptShape(
        input_names=input_names,
        outputs=outputs,
        tools=tools,
        json_adapter=_JSON_STRUCTURE_HEADING in system,
    )


def _field_entries(block: str) -> list[tuple[str, str, str]]:
    """``(name, type name, constraints text)`` for each ``N. `name` (type): desc`` entry."""
    entries: list[tuple[str, str, str]] = []
    matches = list(_FIELD_ENTRY.finditer(block))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(block)
        type_end = _closing_paren(block, match.end())
        type_name = block[match.end() : type_end]
        constraints = ""
        for line in block[type_end:end].splitlines():
            if line.startswith("Constraints: "):
                constraints = line[len("Constraints: ") :]
        entries.append((match.group(1), type_name, constraints))
    return entries


def _closing_paren(text: str, start: int) -> int:
    """Index of the ``)`` closing a paren opened just before ``start`` (quotes respected)."""
    depth = 1
    quote = ""
    index = start
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return index
        elif char == "\n":
            break
        index += 1
    return index


def _notes(system: str, structure_at: int) -> dict[str, str]:
    """Per-field type notes from the structure section (``# note: the value you produce ...``)."""
    notes = {m.group(1): m.group(2) for m in _NOTE.finditer(system, structure_at)}
    json_at = system.find(_JSON_STRUCTURE_HEADING, structure_at)
    if json_at >= 0:
        # JSONAdapter writes the structure as a JSON object whose values carry the notes.
        brace = system.find("{", json_at)
        try:
            block, _ = json.JSONDecoder().raw_decode(system, brace)
        except ValueError:
            block = {}
        if isinstance(block, dict):
            for value in block.values():
                if isinstance(value, str) and (m := _NOTE.match(value)):
                    notes[m.group(1)] = m.group(2)
    return notes


def _tools(system: str, names: tuple[str, ...]) -> tuple[ToolSpec, ...]:
    """The tools ReAct lists as ``(n) name, whose description is ... It takes arguments {...}.``"""
    by_length = sorted(names, key=len, reverse=True)
    tools: dict[str, ToolSpec] = {}
    for match in _TOOL_LINE.finditer(system):
        line = match.group(1).rstrip()
        name = next(
            (n for n in by_length if line == n or line.startswith((f"{n},", f"{n}.", f"{n} "))),
            None,
        )
        if name is None or name in tools:
            continue
        args: Mapping[str, Mapping[str, Any]] = {}
        at = line.rfind(_TOOL_ARGS)
        if at >= 0:
            text = line[at + len(_TOOL_ARGS) :].removesuffix(".")
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                parsed = {}
            if isinstance(parsed, dict):
                args = {str(k): v if isinstance(v, dict) else {} for k, v in parsed.items()}
        tools[name] = ToolSpec(name, args)
    return tuple(tools.get(name, ToolSpec(name)) for name in names)


def _parse_inputs(user: str, names: tuple[str, ...]) -> dict[str, str]:
    """Input values from the user message ``[[ ## name ## ]]\\nvalue`` sections, in order.

    Only headers of declared input fields split the text, so a ReAct trajectory (which holds
    ``[[ ## thought_0 ## ]]``-style headers of its own) stays one value.
    """
    end = len(user)
    for trailer in (_CHAT_TRAILER, _JSON_TRAILER):
        at = user.rfind(f"\n\n{trailer}")
        if at >= 0:
            end = min(end, at)
    if not names:
        names = tuple(re.findall(r"^\[\[ ## (\w+) ## \]\]$", user[:end], re.MULTILINE))
    found: list[tuple[str, int, int]] = []
    position = 0
    for name in names:
        header = f"[[ ## {name} ## ]]"
        at = user.find(header, position, end)
        if at < 0:
            continue
        found.append((name, at, at + len(header)))
        position = at + len(header)
    values: dict[str, str] = {}
    for index, (name, _, value_start) in enumerate(found):
        value_end = found[index + 1][1] if index + 1 < len(found) else end
        values[name] = user[value_start:value_end].strip()
    return values


def _outputs_from_trailer(user: str) -> tuple[OutputSpec, ...]:
    """Output fields from the user message's closing instructions, when there is no system block.

    Only names and simple types are recoverable here; anything else is answered as text.
    """
    at = max(user.rfind(_CHAT_TRAILER), user.rfind(_JSON_TRAILER))
    if at < 0:
        return ()
    trailer = user[at:]
    specs: list[OutputSpec] = []
    for match in _TRAILER_FIELD.finditer(trailer):
        name = match.group(1)
        if name == "completed":
            continue
        type_name = "str"
        if trailer.startswith(_PY_TYPE_PREFIX, match.end()):
            start = match.end() + len(_PY_TYPE_PREFIX)
            type_name = trailer[start : _closing_paren(trailer, start)]
        specs.append(output_spec(name, type_name, "", None))
    return tuple(specs)
