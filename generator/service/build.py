"""Build the template-ready model from a valid spec, resolving every reference.

Templates see only the model (as plain data), never raw YAML. Building it checks
what the shape alone cannot: references between sections, names that would
collide in generated code, listeners that DSPy could not attach at run time,
and status templates with unknown placeholders. Every problem is collected, so a
user sees all of them at once.
"""

from __future__ import annotations

import inspect
import keyword
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from dspy_forge.service.anatomy import (
    CUSTOM,
    REACT_STEP,
    REASONING,
    RESERVED_FIELDS,
    adds_reasoning,
)
from dspy_forge.service.anatomy import known as anatomy_known
from dspy_forge.service.anatomy import predictors as anatomy_predictors
from dspy_forge.service.best_of import resolve_best_of
from dspy_forge.service.chat import resolve_chat
from dspy_forge.service.custom import custom_module
from dspy_forge.service.dspy_calls import TOOL_CALL_KWARGS, internal_names
from dspy_forge.service.evaluation import resolve_evaluation
from dspy_forge.service.inline import parse_inline
from dspy_forge.service.listeners import custom_listeners, resolve_listeners
from dspy_forge.service.model import (
    CustomModel,
    FieldModel,
    ListenerModel,
    LMModel,
    ProgramModel,
    ServiceModel,
    SignatureModel,
    ToolModel,
)
from dspy_forge.service.names import name_clashes, pascal
from dspy_forge.service.state import state_problem
from dspy_forge.service.status_templates import resolve_status
from dspy_forge.spec.contract import ProgramSpec, Spec, snake_case
from dspy_forge.spec.errors import Path as KeyPath
from dspy_forge.spec.errors import SpecError
from dspy_forge.spec.hints import suggest
from dspy_forge.spec.types import TypeSyntaxError, parse_type


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
        lm = LMModel.resolved(spec.lm, None)
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
        self.example_sets: list[tuple[str, str]] = []
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
            example_sets=tuple(self.example_sets),
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
        custom = custom_module(raw, path, self.check_name, self.error)
        status, errors = resolve_status(raw, path)
        best_of, best_of_errors = resolve_best_of(raw, path)
        self.errors += errors + best_of_errors
        if signature is None or best_of is False:  # the rest is checked against them
            return None
        inner = best_of.module if best_of else None
        outputs = tuple(f.name for f in signature.outputs)
        anatomy = anatomy_predictors(raw.module, (), outputs, inner)
        predictors = {name: outs for name, (_, outs) in anatomy.items()}
        listeners = self.listeners(raw, predictors, signature, path)
        state_file = self.state(name, raw, states, path, signature, inner)
        evaluation, examples, errors = resolve_evaluation(name, raw, path, signature, self.base_dir)
        self.errors += errors
        self.example_sets += examples
        missing = program_tools is None or listeners is None or status is None
        if missing or state_file is False or custom is False or evaluation is False:
            return None
        extra = (REASONING,) if adds_reasoning(raw.module, inner) else ()
        if extra and "reasoning" in {f.name for f in (*signature.inputs, *signature.outputs)}:
            self.error(
                (*path, "signature"),
                f"{inner or raw.module} adds a 'reasoning' output; rename the field",
            )
            return None
        names = {f.name for f in (*signature.inputs, *signature.outputs)}
        if raw.module == "ReAct" and (taken := sorted(names & set(REACT_STEP))):
            self.error(
                (*path, "signature"),
                f"ReAct's own loop outputs {', '.join(taken)}; rename the field",
            )
            return None
        chat, errors = resolve_chat(raw.chat, signature, listeners, bool(extra), (*path, "chat"))
        self.errors += errors
        if chat is None:
            return None
        return ProgramModel(
            name=name,
            class_prefix=pascal(name),
            module=raw.module,
            description=raw.description,
            signature=signature,
            tools=program_tools,
            max_iters=raw.max_iters,
            lm=LMModel.resolved(self.spec.lm, raw.lm) if raw.lm is not None else None,
            listeners=listeners,
            status=status,
            status_modules=raw.status_modules,
            state_file=state_file or None,
            extra_outputs=extra,
            chat=chat,
            custom=custom if isinstance(custom, CustomModel) else None,
            evaluation=evaluation or None,
            best_of=best_of,
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
        parsed = parse_inline(text)
        if isinstance(parsed, str):
            self.error(path, parsed)
            return None
        inputs, outputs = parsed
        return self.signature(f"{pascal(program)}Signature", None, inputs, outputs, path)

    def program_tools(
        self, raw: ProgramSpec, tools: dict[str, ToolModel], path: KeyPath
    ) -> tuple[ToolModel, ...] | None:
        if raw.module != "ReAct":
            refused = bool(raw.tools) and raw.module != CUSTOM
            if refused:
                self.error(
                    (*path, "tools"), f"{raw.module} calls no tools; only ReAct and Custom do"
                )
            if raw.max_iters is not None:
                self.error((*path, "max_iters"), "max_iters applies to ReAct only")
                refused = True
            if refused and raw.module != CUSTOM:
                return None
            if not raw.tools:
                return None if refused else ()
        elif not raw.tools:
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
        if raw.module != "ReAct" and raw.max_iters is not None:  # refused above
            return None
        return tuple(found) if len(found) == len(raw.tools) else None

    def listeners(
        self,
        raw: ProgramSpec,
        predictors: dict[str, tuple[str, ...]],
        signature: SignatureModel,
        path: KeyPath,
    ) -> tuple[ListenerModel, ...] | None:
        if anatomy_known(raw.module):
            listeners, errors = resolve_listeners(raw, predictors, signature, path)
        else:
            listeners, errors = custom_listeners(raw, signature, path)
        self.errors += errors
        return listeners

    def state(
        self,
        name: str,
        raw: ProgramSpec,
        states: list[tuple[str, str]],
        path: KeyPath,
        signature: SignatureModel,
        inner: str | None,
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
        problem = state_problem(source, raw.module, inputs, outputs, shown=shown, inner=inner)
        if problem is not None:
            self.error((*path, "state"), problem)
            return False
        target = f"state/{name}.json"
        states.append((str(source), target))
        return target


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
