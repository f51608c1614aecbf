"""Write the fake LM's answer: a deterministic completion that DSPy's adapters parse.

Values are valid for each output field's declared type, so typed DSPy programs run end to end.
Prose is drawn from a fixed vocabulary by a hash of the input values: the same question always
gets the same answer and different questions get different ones, which keeps tests stable while
still showing that inputs reach the model. A ReAct step calls a real tool with valid arguments
for a configurable number of steps, then ``finish``.
"""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from dspy_forge.dev.fakelm.fields import OutputSpec
from dspy_forge.dev.fakelm.prompt import ParsedPrompt, ToolSpec
from dspy_forge.dev.fakelm.scenario import DEFAULT_REACT_STEPS, DEFAULT_WORDS

__all__ = ["compose_reply", "field_values", "format_chat_reply", "sentence", "value_for_schema"]

_WORDS = (
    "amber anchor apple arrow autumn basin beacon birch bright brook canyon cedar chalk clear "
    "clever cloud coral cotton crisp dawn delta dune eager ember even fable fern field flint "
    "forest fresh frost gentle glade glass golden granite green grove harbor hazel hollow honest "
    "island ivory jade keen kettle lantern lemon level linen lively maple marble meadow mellow "
    "mint misty moss noble north oak ocean olive open orchard pale pebble pine plain planet "
    "plum polar quiet rapid raven reed ridge river robin rustic sable sage salt sandy scarlet "
    "shadow silver simple slate smooth solar sparrow spring spruce steady stone summer swift "
    "thistle tidy timber topaz tranquil tulip valley velvet vivid walnut warm willow winter "
    "wise yarrow young zephyr"
)
_VOCABULARY = tuple(_WORDS.split())

_MAX_DEPTH = 6
_FORMATS = {
    "date-time": "2024-01-01T12:00:00Z",
    "date": "2024-01-01",
    "time": "12:00:00",
    "duration": "PT1H",
    "email": "user@example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "hostname": "example.com",
}


def compose_reply(
    prompt: ParsedPrompt,
    *,
    words: int = DEFAULT_WORDS,
    react_steps: int = DEFAULT_REACT_STEPS,
    variant: int = 0,
    echo: bool = False,
) -> str:
    """The full completion text for a request.

    ChatAdapter layout (``[[ ## field ## ]]`` sections ending with ``[[ ## completed ## ]]``),
    or a JSON object of the fields when the request asks for JSON (JSONAdapter, or a
    ``response_format``). A request that is not a DSPy prompt gets a plain sentence.

    Args:
        prompt: The parsed request.
        words: Words in each ``str`` field value.
        react_steps: Tool calls a ReAct agent makes before it calls ``finish``.
        variant: Distinguishes the ``n`` choices of one request.
        echo: Answer every ``str`` output field with the first input's text (a rule an
            eval can predict: an example whose expected answer is its question scores 1).
    """
    seed = _input_digest(prompt.inputs, variant)
    if prompt.json_mode:
        if prompt.shape.outputs:
            values = field_values(prompt, seed, words=words, react_steps=react_steps, echo=echo)
        elif prompt.response_schema is not None:
            values = _object_from_schema(prompt.response_schema, seed, words)
        else:
            values = {"answer": sentence(random.Random(seed), words)}
        return orjson.dumps(values, option=orjson.OPT_INDENT_2).decode()
    if not prompt.shape.outputs:
        return sentence(random.Random(seed), words)
    values = field_values(prompt, seed, words=words, react_steps=react_steps, echo=echo)
    return format_chat_reply(values)


def format_chat_reply(values: Mapping[str, Any]) -> str:
    """Values in ChatAdapter's layout; strings are written raw, everything else as JSON."""
    sections = [f"[[ ## {name} ## ]]\n{_chat_text(value)}" for name, value in values.items()]
    sections.append("[[ ## completed ## ]]")
    return "\n\n".join(sections)


def field_values(
    prompt: ParsedPrompt,
    seed: str,
    *,
    words: int = DEFAULT_WORDS,
    react_steps: int = DEFAULT_REACT_STEPS,
    echo: bool = False,
) -> dict[str, Any]:
    """A valid value for every output field, in order, keyed by field name.

    With ``echo``, ``str`` fields repeat the first input's text instead of prose.
    """
    first = next(iter(prompt.inputs.values()), None) if echo else None
    values = {
        spec.name: first
        if first is not None and spec.kind == "str"
        else _field_value(spec, random.Random(f"{seed}/{spec.name}"), words)
        for spec in prompt.shape.outputs
    }
    if prompt.shape.is_react:
        values.update(_react_step(prompt, random.Random(f"{seed}/tool"), react_steps))
    return values


def sentence(rng: random.Random, words: int) -> str:
    """A capitalised sentence of ``words`` vocabulary words ending with a full stop."""
    chosen = [rng.choice(_VOCABULARY) for _ in range(max(1, words))]
    return " ".join(chosen).capitalize() + "."


def value_for_schema(
    schema: Mapping[str, Any],
    rng: random.Random,
    defs: Mapping[str, Any] | None = None,
    depth: int = 0,
) -> Any:
    """A JSON value valid for ``schema`` (the subset pydantic and DSPy tools produce).

    Handles ``$ref``/``$defs``, ``const``, ``enum``, ``anyOf``/``oneOf``/``allOf``, scalar types
    with their bounds and string formats, arrays (incl. tuples) and objects. Recursive models
    are cut off by preferring ``null``/empty arrays once nested deeply.
    """
    if not isinstance(schema, Mapping):
        return _phrase(rng)
    defs = {**(defs or {}), **schema.get("$defs", {}), **schema.get("definitions", {})}
    if "$ref" in schema:
        target = defs.get(str(schema["$ref"]).rsplit("/", 1)[-1], {})
        return value_for_schema(target, rng, defs, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        options = [o for o in schema.get(key, ()) if isinstance(o, Mapping)]
        if options:
            non_null = [o for o in options if o.get("type") != "null"]
            if non_null and (depth < _MAX_DEPTH or len(non_null) == len(options)):
                return value_for_schema(non_null[0], rng, defs, depth + 1)
            return None
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            if isinstance(part, Mapping):
                merged.update(part)
        return value_for_schema(merged, rng, defs, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "string":
        return _string(schema, rng)
    if kind == "integer":
        return _integer(schema, rng)
    if kind == "number":
        return _number(schema, rng)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "array":
        return _array(schema, rng, defs, depth)
    return _object(schema, rng, defs, depth)


def _input_digest(inputs: Mapping[str, str], variant: int) -> str:
    data = orjson.dumps(sorted(inputs.items())) + variant.to_bytes(4, "little")
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def _chat_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int | float):
        return repr(value)
    return orjson.dumps(value).decode()


def _field_value(spec: OutputSpec, rng: random.Random, words: int) -> Any:
    schema = spec.schema or {}
    if spec.kind == "choice":
        return spec.choices[0] if spec.choices else ""
    if spec.kind == "str":
        return _bounded_text(sentence(rng, words), schema, rng)
    if spec.kind == "int":
        return _integer(schema, rng)
    if spec.kind == "float":
        return _number(schema, rng)
    if spec.kind == "bool":
        return rng.random() < 0.5
    return value_for_schema(schema, rng)


def _react_step(prompt: ParsedPrompt, rng: random.Random, react_steps: int) -> dict[str, Any]:
    """``next_tool_name``/``next_tool_args``: a real tool while steps remain, then ``finish``."""
    tool: ToolSpec | None = next((t for t in prompt.shape.tools if t.name != "finish"), None)
    if tool is None or prompt.trajectory_steps >= react_steps:
        return {"next_tool_name": "finish", "next_tool_args": {}}
    args = {name: value_for_schema(tool.args[name], rng) for name in tool.required}
    return {"next_tool_name": tool.name, "next_tool_args": args}


def _object_from_schema(schema: Mapping[str, Any], seed: str, words: int) -> dict[str, Any]:
    """A JSON-mode answer built from a ``response_format`` schema; top-level strings are prose."""
    values: dict[str, Any] = {}
    for name, prop in dict(schema.get("properties") or {}).items():
        rng = random.Random(f"{seed}/{name}")
        if isinstance(prop, Mapping) and prop.get("type") == "string" and "enum" not in prop:
            values[name] = _bounded_text(sentence(rng, words), prop, rng)
        else:
            values[name] = value_for_schema(prop, rng, schema.get("$defs"))
    return values


def _phrase(rng: random.Random, words: int = 3) -> str:
    return " ".join(rng.choice(_VOCABULARY) for _ in range(words))


def _bounded_text(text: str, schema: Mapping[str, Any], rng: random.Random) -> str:
    """Fit ``text`` within ``minLength``/``maxLength``."""
    low = int(schema.get("minLength", 0))
    high = schema.get("maxLength")
    while len(text) < low:
        text = f"{text} {rng.choice(_VOCABULARY)}"
    if high is not None and len(text) > int(high):
        text = text[: int(high)]
        if text.endswith(" ") and len(text) > low:
            text = text.rstrip() or text
        if text.endswith(" "):
            text = text[:-1] + "x"
    return text


def _string(schema: Mapping[str, Any], rng: random.Random) -> str:
    fmt = schema.get("format")
    if fmt in _FORMATS:
        return _FORMATS[fmt]
    if fmt == "uuid":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if fmt in ("uri", "url", "iri"):
        return f"https://example.com/{rng.choice(_VOCABULARY)}"
    return _bounded_text(_phrase(rng), schema, rng)


def _bounds(schema: Mapping[str, Any]) -> tuple[float | None, float | None, bool, bool]:
    """``(low, high, low_exclusive, high_exclusive)`` from JSON-schema numeric keywords."""
    low, high = schema.get("minimum"), schema.get("maximum")
    low_open = high_open = False
    if isinstance(schema.get("exclusiveMinimum"), int | float):
        low, low_open = schema["exclusiveMinimum"], True
    if isinstance(schema.get("exclusiveMaximum"), int | float):
        high, high_open = schema["exclusiveMaximum"], True
    return low, high, low_open, high_open


def _integer(schema: Mapping[str, Any], rng: random.Random) -> int:
    low, high, low_open, high_open = _bounds(schema)
    lo = None if low is None else math.floor(low) + 1 if low_open else math.ceil(low)
    hi = None if high is None else math.ceil(high) - 1 if high_open else math.floor(high)
    if lo is None and hi is None:
        lo, hi = 1, 100
    elif lo is None:
        lo = hi - 10 if hi is not None else 1
    elif hi is None:
        hi = lo + 10
    value = rng.randint(lo, max(lo, hi))
    step = schema.get("multipleOf")
    if isinstance(step, int) and step > 0:
        value = -(-value // step) * step
        if value > hi and value - step >= lo:
            value -= step
    return value


def _number(schema: Mapping[str, Any], rng: random.Random) -> float:
    low, high, _, _ = _bounds(schema)
    share = rng.uniform(0.25, 0.75)
    if low is None and high is None:
        return round(rng.uniform(0.05, 0.95), 2)
    if low is None:
        low = float(high) - 10  # type: ignore[arg-type]
    if high is None:
        high = float(low) + 10
    value = float(low) + (float(high) - float(low)) * share
    rounded = round(value, 2)
    return rounded if low < rounded < high else value


def _array(
    schema: Mapping[str, Any], rng: random.Random, defs: Mapping[str, Any], depth: int
) -> list[Any]:
    prefix = schema.get("prefixItems")
    if isinstance(prefix, list):
        return [value_for_schema(item, rng, defs, depth + 1) for item in prefix]
    low = int(schema.get("minItems", 0))
    high = schema.get("maxItems")
    count = low if depth >= _MAX_DEPTH else max(low, 2)
    if high is not None:
        count = min(count, int(high))
    items = schema.get("items", {})
    values: list[Any] = []
    for _ in range(count * 4):
        if len(values) >= count:
            break
        value = value_for_schema(items, rng, defs, depth + 1)
        if not schema.get("uniqueItems") or value not in values:
            values.append(value)
    return values


def _object(
    schema: Mapping[str, Any], rng: random.Random, defs: Mapping[str, Any], depth: int
) -> dict[str, Any]:
    properties = dict(schema.get("properties") or {})
    required = set(schema.get("required") or ())
    values = {
        name: value_for_schema(prop, rng, defs, depth + 1)
        for name, prop in properties.items()
        if name in required or depth < 2
    }
    extra = schema.get("additionalProperties")
    if not properties and extra is not False:
        item_schema = extra if isinstance(extra, Mapping) else {"type": "string"}
        for _ in range(2):
            values[rng.choice(_VOCABULARY)] = value_for_schema(item_schema, rng, defs, depth + 1)
    return values
