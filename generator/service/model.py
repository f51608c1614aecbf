"""The template-ready model: a validated spec with every reference resolved.

Templates see only this model (as plain data), never raw YAML. Building it checks
what the shape alone cannot: references between sections, names that would
collide in generated code, listeners that DSPy could not attach at run time,
and status templates with unknown placeholders. Every problem is collected, so a
user sees all of them at once.
"""

from __future__ import annotations

import inspect
import keyword
import re
import string
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from dspy_forge.service.dspy_calls import TOOL_CALL_KWARGS, internal_names
from dspy_forge.service.names import name_clashes, pascal
from dspy_forge.service.state import REACT_STEP, state_problem
from dspy_forge.spec.contract import (
    HOOKS,
    LMOverride,
    LMSpec,
    ProgramSpec,
    ServerSpec,
    Spec,
    snake_case,
)
from dspy_forge.spec.errors import Path as KeyPath
from dspy_forge.spec.errors import SpecError
from dspy_forge.spec.hints import closest, suggest
from dspy_forge.spec.types import FieldType, TypeSyntaxError, parse_type

# Placeholders each status hook can fill in (see the generated status.py).
PLACEHOLDERS: dict[str, frozenset[str]] = {
    "tool_start": frozenset({"program", "tool", "args"}),
    "tool_end": frozenset({"program", "tool", "output"}),
    "tool_error": frozenset({"program", "tool", "error"}),
    "lm_start": frozenset({"program", "model"}),
    "lm_end": frozenset({"program", "model"}),
    "lm_error": frozenset({"program", "model", "error"}),
    "module_start": frozenset({"program", "module"}),
    "module_end": frozenset({"program", "module"}),
}
# Names a field may not take: they shadow attributes of pydantic models, DSPy
# signatures (and their metaclass) or predictions, which the generated code and DSPy
# rely on, or a name that field annotations in the generated class bodies read.
RESERVED_FIELDS = frozenset(
    {
        # pydantic.BaseModel (besides model_*)
        "construct",
        "copy",
        "dict",
        "from_orm",
        "json",
        "parse_file",
        "parse_obj",
        "parse_raw",
        "schema",
        "schema_json",
        "update_forward_refs",
        "validate",
        # dspy.Signature and its metaclass
        "append",
        "append_instructions",
        "delete",
        "dump_state",
        "equals",
        "fields",
        "input_fields",
        "insert",
        "instructions",
        "load_state",
        "output_fields",
        "prepend",
        "signature",
        "with_instructions",
        "with_updated_fields",
        # dspy.Prediction, and the generated Outputs base
        "completions",
        "from_completions",
        "from_prediction",
        "get",
        "get_lm_usage",
        "inputs",
        "items",
        "keys",
        "labels",
        "set_lm_usage",
        "toDict",
        "values",
        "with_inputs",
        "without",
        # ReAct's trajectory; names read by annotations in a class body
        "trajectory",
        "Field",
        "Literal",
        "bool",
        "dspy",
        "float",
        "int",
        "list",
        "str",
    }
)


@dataclass(frozen=True)
class FieldModel:
    """A signature field or a tool argument.

    ``name`` is the field's public name (JSON key, OpenAPI); ``attr`` is its name
    inside the program (signature field, request model attribute), which differs
    only for an input named like a keyword DSPy's call path takes for itself.
    """

    name: str
    type: FieldType
    description: str
    attr: str


@dataclass(frozen=True)
class SignatureModel:
    """A signature class of the generated ``signatures.py``."""

    class_name: str
    instructions: str | None
    inputs: tuple[FieldModel, ...]
    outputs: tuple[FieldModel, ...]


@dataclass(frozen=True)
class ToolModel:
    """A tool: the stub the user fills in, and how programs import it."""

    name: str
    description: str
    args: tuple[FieldModel, ...]
    returns: FieldType
    module: str  # dotted, relative to the package
    function: str


@dataclass(frozen=True)
class LMModel:
    """A fully resolved LM configuration."""

    model: str
    api_key_env: str | None
    api_base: str | None
    temperature: float | None
    max_tokens: int | None
    cache: bool


@dataclass(frozen=True)
class ListenerModel:
    """A stream listener attached to a known predictor of the program."""

    field: str
    predictor: str
    allow_reuse: bool


@dataclass(frozen=True)
class ProgramModel:
    """A served program with everything its route, factory and tests need."""

    name: str
    class_prefix: str
    module: str
    description: str
    signature: SignatureModel
    tools: tuple[ToolModel, ...]
    max_iters: int | None
    lm: LMModel | None  # None: the service's LM
    listeners: tuple[ListenerModel, ...]
    status: tuple[tuple[str, str | None], ...]  # (hook, template) for every hook
    state_file: str | None  # path inside the generated project
    extra_outputs: tuple[FieldModel, ...]  # fields the module adds, e.g. reasoning


@dataclass(frozen=True)
class ServiceModel:
    """The whole generated service."""

    name: str
    package: str
    title: str
    description: str
    version: str
    lm: LMModel
    signatures: tuple[SignatureModel, ...]
    tools: tuple[ToolModel, ...]
    programs: tuple[ProgramModel, ...]
    server: ServerSpec  # defaults of the generated settings, already validated
    state_sources: tuple[tuple[str, str], ...]  # (absolute source, project path)

    def to_data(self) -> dict[str, Any]:
        """Plain, JSON-ready data for the templates and Copier's answers file."""
        data = asdict(self)
        data.pop("state_sources")
        data["server"] = self.server.model_dump(mode="json")
        return data


# Predictors each module creates, with the output fields each one adds to the signature's.
def _predictors(module: str, outputs: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    if module == "Predict":
        return {"self": outputs}
    if module == "ChainOfThought":
        return {"predict": ("reasoning", *outputs)}
    # ReAct: the loop's predictor, then the ChainOfThought that extracts the outputs.
    return {
        "react": ("next_thought", "next_tool_name", "next_tool_args"),
        "extract.predict": ("reasoning", *outputs),
    }


REASONING = FieldModel(
    name="reasoning",
    type=parse_type("str"),
    description="The model's step-by-step reasoning before the outputs.",
    attr="reasoning",
)


class _Builder:
    """Builds a :class:`ServiceModel`, collecting errors instead of stopping at the first."""

    def __init__(
        self, spec: Spec, base_dir: Path | None, unchecked: dict[str, frozenset[str]]
    ) -> None:
        self.spec = spec
        self.base_dir = base_dir
        self.unchecked = unchecked
        self.errors: list[SpecError] = []

    def error(self, path: KeyPath, message: str) -> None:
        self.errors.append(SpecError(path=path, message=message))

    def build(self) -> ServiceModel | None:
        spec = self.spec
        lm = _resolve_lm(spec.lm, None)
        signatures = {
            name: sig
            for name, raw in spec.signatures.items()
            if (
                sig := self.signature(
                    name, raw.instructions, raw.inputs, raw.outputs, ("signatures", name)
                )
            )
        }
        tools = {
            name: tool
            for name, raw in spec.tools.items()
            if (tool := self.tool(name, raw, ("tools", name)))
        }
        programs = []
        states: list[tuple[str, str]] = []
        for name, raw in spec.programs.items():
            program = self.program(name, raw, signatures, tools, states)
            if program is not None:
                programs.append(program)
        if self.errors:
            return None
        inline = [p.signature for p in programs if p.signature.class_name not in signatures]
        return ServiceModel(
            name=spec.service.name,
            package=snake_case(spec.service.name),
            title=spec.service.title or spec.service.name,
            description=spec.service.description,
            version=spec.service.version,
            lm=lm,
            signatures=(*signatures.values(), *inline),
            tools=tuple(tools.values()),
            programs=tuple(programs),
            server=spec.server,
            state_sources=tuple(states),
        )

    def check_name(self, name: str, path: KeyPath) -> bool:
        if keyword.iskeyword(name) or keyword.issoftkeyword(name):
            self.error(path, f"{name!r} is a Python keyword; choose another name")
            return False
        if name.startswith("__") or name.startswith("_"):
            self.error(path, f"{name!r} starts with an underscore; names must be public")
            return False
        if name in {"l", "O", "I"}:
            self.error(path, f"{name!r} reads like 1 or 0 (PEP 8, ruff E741); choose another name")
            return False
        return True

    def fields(self, raw: dict[str, Any], path: KeyPath) -> tuple[FieldModel, ...] | None:
        fields = []
        ok = True
        for name, field in raw.items():
            where = (*path, name)
            ok &= self.check_name(name, where)
            if name in RESERVED_FIELDS or name.startswith("model_"):
                self.error(where, f"{name!r} is reserved by pydantic or DSPy; choose another name")
                ok = False
            try:
                field_type = parse_type(field.type)
            except TypeSyntaxError as exc:
                self.error((*where, "type"), str(exc))
                ok = False
                continue
            fields.append(FieldModel(name, field_type, field.description, attr=name))
        return tuple(fields) if ok else None

    def signature(
        self,
        name: str,
        instructions: str | None,
        inputs: dict[str, Any],
        outputs: dict[str, Any],
        path: KeyPath,
    ) -> SignatureModel | None:
        named = self.check_name(name, path)
        ins = self.fields(inputs, (*path, "inputs"))
        outs = self.fields(outputs, (*path, "outputs"))
        if ins is None or outs is None:
            return None
        ok = named
        if not ins:
            self.error((*path, "inputs"), "a signature needs at least one input field")
            ok = False
        if not outs:
            self.error((*path, "outputs"), "a signature needs at least one output field")
            ok = False
        for field in outs:
            if field.name in {f.name for f in ins}:
                self.error((*path, "outputs", field.name), "also an input field; names must differ")
                ok = False
            if field.type.uses_dspy_type:
                self.error(
                    (*path, "outputs", field.name, "type"), "Image and History are input types"
                )
                ok = False
        internal = internal_names([f.name for f in (*ins, *outs)], [f.name for f in ins])
        ins = tuple(replace(f, attr=internal[f.name]) for f in ins)
        # DSPy reads instructions as a docstring (inspect.cleandoc); store them that way.
        cleaned = inspect.cleandoc(instructions) if instructions else None
        return SignatureModel(name, cleaned or None, ins, outs) if ok else None

    def tool(self, name: str, raw: Any, path: KeyPath) -> ToolModel | None:
        args = self.fields(raw.args, (*path, "args"))
        for arg in sorted(set(raw.args) & TOOL_CALL_KWARGS):
            self.error(
                (*path, "args", arg),
                f"{arg!r} is bound by DSPy's Tool.acall itself, so the LM could never pass it; "
                "choose another name",
            )
            args = None
        try:
            returns = parse_type(raw.returns)
        except TypeSyntaxError as exc:
            self.error((*path, "returns"), str(exc))
            return None
        if args is None or not self.check_name(name, path):
            return None
        if name == "finish":
            self.error(path, "'finish' is ReAct's own tool; choose another name")
            return None
        module, function = (raw.impl or f"tools.{name}:{name}").split(":")
        if not re.fullmatch(r"tools\.[a-z_][a-z0-9_]*", module) or module == "tools.__init__":
            self.error(
                (*path, "impl"),
                f"{module!r}: tools live in the generated package's tools/, as 'tools.<module>'",
            )
            return None
        if raw.impl is not None:
            # Both parts become Python names: `from .tools.<module> import <function>`.
            parts = (module.removeprefix("tools."), function)
            if not all([self.check_name(part, (*path, "impl")) for part in parts]):
                return None
            if len(parts[0]) > 64:
                self.error((*path, "impl"), "the module name is longer than 64 characters")
                return None
        return ToolModel(name, raw.description, args, returns, module, function)

    def program(
        self,
        name: str,
        raw: ProgramSpec,
        signatures: dict[str, SignatureModel],
        tools: dict[str, ToolModel],
        states: list[tuple[str, str]],
    ) -> ProgramModel | None:
        path: KeyPath = ("programs", name)
        if not self.check_name(name, path):
            return None
        signature = self.program_signature(name, raw.signature, signatures, (*path, "signature"))
        program_tools = self.program_tools(raw, tools, path)
        status = self.status(raw, path)
        if signature is None:  # the rest is checked against the signature
            return None
        outputs = tuple(f.name for f in signature.outputs)
        predictors = _predictors(raw.module, outputs)
        listeners = self.listeners(raw, predictors, signature, path)
        state_file = self.state(name, raw, states, path, signature)
        if program_tools is None or listeners is None or status is None or state_file is False:
            return None
        extra = (REASONING,) if raw.module in {"ChainOfThought", "ReAct"} else ()
        if extra and "reasoning" in {f.name for f in (*signature.inputs, *signature.outputs)}:
            self.error(
                (*path, "signature"), f"{raw.module} adds a 'reasoning' output; rename the field"
            )
            return None
        names = {f.name for f in (*signature.inputs, *signature.outputs)}
        if raw.module == "ReAct" and (taken := sorted(names & set(REACT_STEP))):
            self.error(
                (*path, "signature"),
                f"ReAct's own loop outputs {', '.join(taken)}; rename the field",
            )
            return None
        return ProgramModel(
            name=name,
            class_prefix=pascal(name),
            module=raw.module,
            description=raw.description,
            signature=signature,
            tools=program_tools,
            max_iters=raw.max_iters,
            lm=_resolve_lm(self.spec.lm, raw.lm) if raw.lm is not None else None,
            listeners=listeners,
            status=status,
            state_file=state_file or None,
            extra_outputs=extra,
        )

    def program_signature(
        self, program: str, text: str, signatures: dict[str, SignatureModel], path: KeyPath
    ) -> SignatureModel | None:
        if "->" not in text:
            if text in signatures:
                return signatures[text]
            broken = self.unchecked.get("signatures", frozenset())
            if text not in self.spec.signatures and text not in broken:  # else: reported
                known = {*self.spec.signatures, *broken}
                self.error(
                    path, f"no signature named {text!r}" + suggest(text, known, what="signatures")
                )
            return None
        parsed = _parse_inline(text)
        if isinstance(parsed, str):
            self.error(path, parsed)
            return None
        inputs, outputs = parsed
        return self.signature(f"{pascal(program)}Signature", None, inputs, outputs, path)

    def program_tools(
        self, raw: ProgramSpec, tools: dict[str, ToolModel], path: KeyPath
    ) -> tuple[ToolModel, ...] | None:
        if raw.module != "ReAct":
            if raw.tools:
                self.error((*path, "tools"), f"{raw.module} calls no tools; only ReAct does")
            if raw.max_iters is not None:
                self.error((*path, "max_iters"), "max_iters applies to ReAct only")
            return None if raw.tools or raw.max_iters is not None else ()
        if not raw.tools:
            self.error((*path, "tools"), "ReAct needs at least one tool")
            return None
        found = []
        for index, name in enumerate(raw.tools):
            if name in tools:
                found.append(tools[name])
            elif name not in self.spec.tools and name not in self.unchecked.get("tools", ()):
                known = {*self.spec.tools, *self.unchecked.get("tools", ())}
                self.error(
                    (*path, "tools", index),
                    f"no tool named {name!r}" + suggest(name, known, what="tools"),
                )
        if len(set(raw.tools)) != len(raw.tools):
            self.error((*path, "tools"), "a tool is listed twice")
            return None
        return tuple(found) if len(found) == len(raw.tools) else None

    def listeners(
        self,
        raw: ProgramSpec,
        predictors: dict[str, tuple[str, ...]],
        signature: SignatureModel,
        path: KeyPath,
    ) -> tuple[ListenerModel, ...] | None:
        types = {f.name: f.type for f in signature.outputs} | {
            "reasoning": parse_type("str"),
            "next_thought": parse_type("str"),
        }
        result = []
        seen = set()
        for index, listener in enumerate(raw.stream):
            where = (*path, "stream", index)
            owners = [p for p, fields in predictors.items() if listener.field in fields]
            if listener.predictor is not None:
                if listener.predictor not in predictors:
                    self.error(
                        (*where, "predictor"),
                        f"{raw.module} has no predictor {listener.predictor!r}"
                        + suggest(listener.predictor, predictors),
                    )
                    continue
                owners = [listener.predictor] if listener.predictor in owners else []
            if not owners:
                known = {f for p, fields in predictors.items() for f in fields}
                if listener.predictor is not None:
                    known = set(predictors[listener.predictor])
                self.error(
                    (*where, "field"),
                    f"no predictor of this {raw.module} outputs {listener.field!r}"
                    + suggest(listener.field, known),
                )
                continue
            if len(owners) > 1:
                self.error(
                    (*where, "predictor"),
                    f"{listener.field!r} is output by several predictors ({', '.join(owners)}); "
                    "name one",
                )
                continue
            field_type = types.get(listener.field)
            if field_type is None or not field_type.is_str:
                shown = field_type.annotation if field_type else "structured"
                self.error(
                    (*where, "field"),
                    f"{listener.field!r} is {shown}; only str fields stream token by token",
                )
                continue
            key = (owners[0], listener.field)
            if key in seen:
                self.error(where, f"{listener.field!r} of {owners[0]!r} is listened to twice")
                continue
            seen.add(key)
            result.append(ListenerModel(listener.field, owners[0], listener.allow_reuse))
        return tuple(result) if len(result) == len(raw.stream) else None

    def status(self, raw: ProgramSpec, path: KeyPath) -> tuple[tuple[str, str | None], ...] | None:
        ok = True
        for hook in HOOKS:
            template = getattr(raw.status, hook)
            if template is None:
                continue
            problem = _check_template(template, PLACEHOLDERS[hook])
            if problem:
                self.error((*path, "status", hook), problem)
                ok = False
        return tuple((hook, getattr(raw.status, hook)) for hook in HOOKS) if ok else None

    def state(
        self,
        name: str,
        raw: ProgramSpec,
        states: list[tuple[str, str]],
        path: KeyPath,
        signature: SignatureModel,
    ) -> str | bool:
        from dspy_forge.service.state import state_file

        if raw.state is None:
            return ""
        found = state_file(raw.state, self.base_dir)  # only files in the spec's folder
        if isinstance(found, str):
            self.error((*path, "state"), found)
            return False
        source, shown = found
        inputs = tuple(f.name for f in signature.inputs)
        outputs = tuple(f.name for f in signature.outputs)
        problem = state_problem(source, raw.module, inputs, outputs, shown=shown)
        if problem is not None:
            self.error((*path, "state"), problem)
            return False
        target = f"state/{name}.json"
        states.append((str(source), target))
        return target


def _resolve_lm(base: LMSpec, override: LMOverride | None) -> LMModel:
    values = base.model_dump()
    if override is not None:
        values |= {k: v for k, v in override.model_dump().items() if v is not None}
    return LMModel(**values)


def _check_template(template: str, allowed: frozenset[str]) -> str | None:
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"not a valid template ({exc}); write literal braces as {{{{ and }}}}"
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in allowed:
            guess = closest(name, allowed)
            if guess is not None:
                return f"unknown placeholder {{{name}}}; did you mean {{{guess}}}?"
            return f"unknown placeholder {{{name}}}; this hook offers " + ", ".join(
                f"{{{p}}}" for p in sorted(allowed)
            )
        if spec or conversion:
            return f"placeholder {{{name}}} takes no format spec or conversion"
    return None


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part.strip() for part in parts]


def _parse_inline(text: str) -> tuple[dict[str, Any], dict[str, Any]] | str:
    """Parse 'a, b: int -> c: list[str]' into field maps, or return what is wrong."""
    from dspy_forge.spec.contract import FieldSpec

    sides = text.split("->")
    if len(sides) != 2:
        return "an inline signature has exactly one '->' between inputs and outputs"
    result = []
    for side in sides:
        fields: dict[str, Any] = {}
        if not side.strip():
            return "an inline signature needs at least one field on each side of '->'"
        for part in _split_top_level(side):
            name, _, type_text = part.partition(":")
            name = name.strip()
            # ASCII only, as for named fields: Python would NFKC-normalize other names.
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name):
                return f"{name!r} is not a valid field name (ASCII letters, digits and '_')"
            if name in fields:
                return f"field {name!r} is given twice"
            # Not validated again: the type is checked by parse_type, whatever its length.
            fields[name] = FieldSpec.model_construct(type=type_text.strip() or "str")
        result.append(fields)
    return result[0], result[1]


def build_model(
    spec: Spec,
    base_dir: Path | None = None,
    *,
    unchecked: dict[str, frozenset[str]] | None = None,
) -> tuple[ServiceModel | None, list[SpecError]]:
    """Resolve a shape-checked spec into the template model, or return its errors.

    ``unchecked`` names, per section, the entries that the spec defines but that
    failed their shape checks (and were left out of ``spec``): references to them
    are not reported again as missing.
    """
    builder = _Builder(spec, base_dir, unchecked or {})
    model = builder.build()
    errors = [*builder.errors, *name_clashes(spec)]
    return (None if errors else model), errors
