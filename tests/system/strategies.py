"""Hypothesis strategies: specs valid by construction, and ways to break them.

Valid specs use every section, module, field type, listener and status hook,
with hostile text (quotes, backslashes, template syntax, line separators, code)
in every free-text slot. Names are drawn so that they clash with nothing; that a
drawn spec validates is itself asserted by the tests.
"""

from __future__ import annotations

import keyword
from typing import Any

from hypothesis import strategies as st

from dspy_forge.service.anatomy import REACT_STEP, RESERVED_FIELDS
from dspy_forge.service.names import BUILTINS, TEMPLATE_NAMES, pascal
from dspy_forge.spec.contract import HOOKS, PLACEHOLDERS
from dspy_forge.spec.yamldoc import BIDI_CONTROLS

HOSTILE = [
    '"""',
    "'''",
    "\\",
    '"',
    "'",
    "{{ 7*7 }}",
    "{% raw %}",
    "{#",
    "\n",
    "\t",
    "\u2028",
    "\u2029",
    "__import__('os').system('touch PWNED')",
    "<script>",
    "`",
    "|",
    "# ",
    "\\N{BULLET}",
    "\\x00",
    "\u200b",  # zero-width space (bidi controls are refused: tests/unit/test_spec_strings.py)
    "\ufeff",
    "é",
    "😀",
    " ",
    "  ",
]
TAKEN = (
    set(RESERVED_FIELDS)
    | BUILTINS
    | set().union(*TEMPLATE_NAMES.values())
    | {"reasoning", "trajectory", "finish", "l", "O", "I", *REACT_STEP}
)


def _free(name: str) -> bool:
    return not (
        keyword.iskeyword(name)
        or keyword.issoftkeyword(name)
        or name in TAKEN
        or name.startswith(("model_", "build_", "run_", "stream_", "batch_", "test_"))
    )


names = st.from_regex(r"[a-z][a-z0-9]{0,6}(_[a-z0-9]{1,3})?", fullmatch=True).filter(_free)
class_names = st.from_regex(r"[A-Z][a-z0-9]{0,6}[A-Z]?[a-z]{0,3}", fullmatch=True).filter(_free)
_chars = st.characters(
    exclude_categories=("Cs", "Cc"), exclude_characters=BIDI_CONTROLS
) | st.sampled_from(["\n", "\t"])
text = st.lists(st.sampled_from(HOSTILE) | st.text(_chars, max_size=5), max_size=6).map("".join)
line = text.map(lambda t: "".join(c for c in t if c not in "\n\u2028\u2029"))
model_names = line.filter(
    lambda t: t.strip() != "" and len(t) <= 200 and ("/" not in t or t.partition("/")[2] != "")
)


def _literal(values: list[Any]) -> str:
    return "Literal[" + ", ".join(repr(v) for v in values) + "]"


_literals = st.lists(
    st.text(_chars, max_size=6) | st.integers(-5, 99), min_size=1, max_size=3, unique=True
).filter(lambda vs: len({str(v) for v in vs}) == len(vs))
_leaf = st.sampled_from(["str", "int", "float", "bool"]) | _literals.map(_literal)
_nested = st.recursive(
    _leaf,
    lambda inner: inner.map(lambda t: f"list[{t}]") | inner.map(lambda t: f"dict[str, {t}]"),
    max_leaves=3,
)
output_types = (_nested | _nested.map(lambda t: f"{t} | None")).filter(lambda t: len(t) <= 500)
input_types = output_types | st.sampled_from(["Image", "History", "Image | None"])


@st.composite
def field_maps(draw: Any, types: st.SearchStrategy[str], taken: set[str]) -> dict[str, Any]:
    """1-3 fields with fresh names; a field without description may use the shorthand."""
    fields = {}
    for name in draw(st.lists(names.filter(lambda n: n not in taken), min_size=1, max_size=3)):
        if name in fields:
            continue
        kind, description = draw(types), draw(text)
        short = not description and draw(st.booleans())
        fields[name] = kind if short else {"type": kind, "description": description}
        taken.add(name)
    return fields


@st.composite
def signature_specs(draw: Any) -> dict[str, Any]:
    taken: set[str] = set()
    spec: dict[str, Any] = {
        "inputs": draw(field_maps(input_types, taken)),
        "outputs": draw(field_maps(output_types, taken)),
    }
    if draw(st.booleans()):
        spec["instructions"] = draw(text)
    return spec


def _inline(draw: Any) -> tuple[str, list[str]]:
    """An inline signature and its output fields of type str."""
    taken: set[str] = set()
    sides, streamable = [], []
    for side in ("inputs", "outputs"):
        parts = []
        for name in draw(st.lists(names.filter(lambda n: n not in taken), min_size=1, max_size=2)):
            if name in taken:
                continue
            taken.add(name)
            kind = draw(st.sampled_from(["", "str", "int", "list[str]", "dict[str, float]"]))
            parts.append(f"{name}: {kind}" if kind else name)
            if side == "outputs" and kind in {"", "str"}:
                streamable.append(name)
        sides.append(", ".join(parts))
    return " -> ".join(sides), streamable


def _template(hook: str) -> st.SearchStrategy[str]:
    """A status template: the hook's placeholders between pieces of escaped text."""
    piece = st.sampled_from([f"{{{p}}}" for p in sorted(PLACEHOLDERS[hook])]) | line.map(
        lambda t: t.replace("{", "{{").replace("}", "}}")
    )
    return (
        st.lists(piece, min_size=1, max_size=4)
        .map("".join)
        .filter(lambda t: t.strip() != "" and len(t) <= 500)
    )


def _status(draw: Any) -> dict[str, str]:
    hooks = draw(st.lists(st.sampled_from(HOOKS), unique=True, max_size=3))
    return {hook: draw(_template(hook)) for hook in hooks}


def _clashes(name: str, others: dict[str, Any], signatures: dict[str, Any]) -> bool:
    """Whether a program ``name`` would give a class name another program or signature has."""
    mine = pascal(name)
    return f"{mine}Signature" in signatures or any(
        mine in {theirs, theirs + "Batch"} or theirs == mine + "Batch"
        for theirs in map(pascal, others)
    )


@st.composite
def specs(draw: Any) -> dict[str, Any]:
    """A valid spec as plain data, ready to be dumped to YAML."""
    spec: dict[str, Any] = {
        "version": 1,
        "service": {"name": "svc-" + draw(st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True))},
        "lm": {"model": draw(model_names)},
    }
    if draw(st.booleans()):
        title = draw(line).replace("<", "").replace(">", "")  # the /docs <title>: no markup
        spec["service"] |= {"title": title, "description": draw(text)}
        spec["service"]["version"] = draw(st.from_regex(r"[0-9]{1,2}\.[0-9](rc1)?", fullmatch=True))
    if draw(st.booleans()):
        spec["lm"] |= {
            "api_base": "https://"
            + draw(
                st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)
            ),
            "api_key_env": draw(st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True)),
            "temperature": draw(st.floats(0, 2)),
            "max_tokens": draw(st.integers(1, 4000)),
            "cache": draw(st.booleans()),
        }
    signatures = draw(st.dictionaries(class_names, signature_specs(), max_size=2))
    tool_names = draw(st.lists(names, unique=True, max_size=2))
    tools = {}
    for name in tool_names:
        tools[name] = {
            "description": draw(text),
            "args": draw(field_maps(output_types, set())),
            "returns": draw(output_types),
        }
        if draw(st.booleans()):
            tools[name]["impl"] = f"tools.{draw(names)}:{name}"
    programs: dict[str, Any] = {}
    for name in draw(st.lists(names, min_size=1, max_size=3, unique=True)):
        if _clashes(name, programs, signatures):
            continue
        module = draw(st.sampled_from(["Predict", "ChainOfThought", "ReAct"][: 3 if tools else 2]))
        program: dict[str, Any] = {"module": module}
        if signatures and draw(st.booleans()):
            program["signature"] = draw(st.sampled_from(sorted(signatures)))
            outputs = signatures[program["signature"]]["outputs"]
            streamable = [
                n for n, f in outputs.items() if (f if isinstance(f, str) else f["type"]) == "str"
            ]
        else:
            program["signature"], streamable = _inline(draw)
        if module != "Predict":
            streamable.append("reasoning")
        chosen = draw(st.lists(st.sampled_from(streamable), unique=True)) if streamable else []
        stream = [{"field": field} for field in chosen]
        if module == "ReAct":
            program["tools"] = draw(
                st.lists(st.sampled_from(sorted(tools)), min_size=1, unique=True)
            )
            if draw(st.booleans()):
                program["max_iters"] = draw(st.integers(1, 10))
            if draw(st.booleans()):
                stream.append({"field": "next_thought", "predictor": "react", "allow_reuse": True})
        if stream:
            program["stream"] = stream
        if status := _status(draw):
            program["status"] = status
        if draw(st.booleans()):
            program["description"] = draw(text)
        if draw(st.booleans()):
            program["lm"] = {"model": draw(model_names)}
        programs[name] = program
    spec["signatures"], spec["tools"], spec["programs"] = signatures, tools, programs
    if draw(st.booleans()):
        spec["server"] = draw(server_specs())
    return spec


@st.composite
def server_specs(draw: Any) -> dict[str, Any]:
    """A valid `server:` section: every key, drawn within its bounds."""
    hosts = st.from_regex(r"[a-z0-9][a-z0-9.-]{0,20}(:[0-9]{2,5})?", fullmatch=True)
    origins = st.one_of(
        st.just("*"),
        st.builds(lambda s, h: f"{s}://{h}", st.sampled_from(["http", "https"]), hosts),
    )
    paths = st.from_regex(r"/[A-Za-z0-9_./-]{0,30}", fullmatch=True)
    seconds = st.one_of(st.none(), st.floats(0.5, 10_000, allow_nan=False))
    return {
        "auth": {
            "required": draw(st.booleans()),
            "open_paths": draw(st.lists(paths, max_size=4)),
        },
        "cors": {
            "origins": draw(st.lists(origins, max_size=3)),
            "methods": draw(st.lists(st.sampled_from(["GET", "POST", "PUT", "*"]), unique=True)),
            "headers": draw(
                st.lists(st.from_regex(r"[A-Za-z0-9-]{1,20}", fullmatch=True), max_size=3)
            ),
        },
        "protocols": {"openai": draw(st.booleans()), "ai_sdk": draw(st.booleans())},
        "max_body_bytes": draw(st.integers(1, 1 << 30)),
        "max_input_chars": draw(st.integers(1, 1 << 30)),
        "max_concurrent_runs": draw(st.integers(1, 100_000)),
        "run_deadline": draw(seconds),
        "idle_timeout": draw(seconds),
        "batch_parallelism": draw(st.integers(1, 1_000)),
        "batch_max_items": draw(st.integers(1, 100_000)),
        "log_format": draw(st.sampled_from(["json", "text"])),
        "log_level": draw(st.sampled_from(["DEBUG", "INFO", "WARNING", "ERROR"])),
        "port": draw(st.integers(1, 65535)),
        "workers": draw(st.integers(1, 256)),
    }
