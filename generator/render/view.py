"""The data the templates render: the service model with every string pre-escaped.

Copier renders in a sandbox without our filters, and a safe template cannot
register any, so each spec string is given to the templates already encoded for
the place it goes (``*_py`` for Python source, ``*_toml``, ``*_md``). Templates
never write a spec string raw; identifiers are safe as they are, being checked.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dspy_forge.render.literals import json_str, md_text, py_literal, py_str, toml_str
from dspy_forge.service.model import (
    FieldModel,
    LMModel,
    ProgramModel,
    ServiceModel,
    SignatureModel,
    ToolModel,
)
from dspy_forge.spec import settings
from dspy_forge.spec.server import ServerSpec
from dspy_forge.spec.types import DSPY_TYPES, FieldType

SCHEMA = 1  # version of this data layout, recorded in .copier-answers.yml


def docstring(text: str | None) -> list[str] | None:
    """The lines of a docstring that reads back as exactly ``text``, or None if none can.

    ``text`` is already in :func:`inspect.cleandoc` form; a docstring is used only
    when nothing in it needs escaping, so that it reads as plain prose, and no line
    ends in whitespace, which ``ruff format`` would strip (changing the text).
    """
    if not text:
        return None
    lines = text.split("\n")
    if any(
        not line.isprintable() or "\\" in line or '"' in line or line != line.rstrip()
        for line in lines
    ):
        return None
    return lines


def _text(text: str) -> dict[str, str]:
    return {"py": py_str(text), "md": md_text(text), "toml": toml_str(text)}


def _field(field: FieldModel) -> dict[str, Any]:
    return {
        "name": field.name,
        "attr": field.attr,
        # The public name, where the program's own differs (see dspy_calls.py).
        "alias_py": py_str(field.name) if field.attr != field.name else None,
        "annotation": field.type.annotation,
        "client_annotation": _client_annotation(field.type),
        # The client's keyword: the public name, which no DSPy call takes there; but a
        # method's own first parameter is `self`.
        "client_param": field.attr if field.name == "self" else field.name,
        "description": _text(field.description),
        "has_description": bool(field.description),
        "optional": field.type.optional,
        "dspy_type": field.type.uses_dspy_type,
        "sample_py": py_literal(field.type.sample),
    }


def _client_annotation(field_type: FieldType) -> str:
    """The field's type in the typed client, which has no DSPy: its types travel as JSON objects.

    A type holding a DSPy type holds no ``Literal`` (the grammar gives each type
    one inner type), so no quoted text can contain the names replaced.
    """
    annotation = field_type.annotation
    if field_type.uses_dspy_type:
        for name in DSPY_TYPES.values():
            annotation = annotation.replace(name, "dict[str, Any]")
    return annotation


def _signature(signature: SignatureModel) -> dict[str, Any]:
    doc = docstring(signature.instructions)
    return {
        "class_name": signature.class_name,
        "docstring": doc,
        "instructions_py": None
        if signature.instructions is None or doc is not None
        else py_str(signature.instructions),
        "inputs": [_field(f) for f in signature.inputs],
        "outputs": [_field(f) for f in signature.outputs],
    }


def _lm_kwargs(lm: LMModel) -> list[str]:
    values = {
        "model": lm.model,
        "api_key_env": lm.api_key_env,
        "api_base": lm.api_base,
        "temperature": lm.temperature,
        "max_tokens": lm.max_tokens,
        "cache": lm.cache,
    }
    return [f"{key}={py_literal(value)}" for key, value in values.items() if value is not None]


def _tool(tool: ToolModel) -> dict[str, Any]:
    return {
        "name": tool.name,
        "module": tool.module,
        "function": tool.function,
        "description": _text(tool.description),
        "docstring": (
            tool_doc[0]
            if (tool_doc := docstring(tool.description)) and len(tool_doc) == 1
            else "Implement this tool; its description is in the spec."
        ),
        "args": [_field(arg) for arg in tool.args],
        "returns": tool.returns.annotation,
    }


def _program(program: ProgramModel) -> dict[str, Any]:
    outputs = [*program.extra_outputs, *program.signature.outputs]
    return {
        "name": program.name,
        "class_prefix": program.class_prefix,
        "module": program.module,
        "description": _text(program.description or f"Run the {program.name} program."),
        "signature_class": program.signature.class_name,
        "inputs": [_field(f) for f in program.signature.inputs],
        "outputs": [_field(f) for f in outputs],
        "tools": [_tool(t) for t in program.tools],
        "max_iters": program.max_iters,
        # module: Custom: the user's class, imported from modules/<module>.py.
        "custom": (
            {"module": program.custom.module.removeprefix("modules."), "class_name": class_name}
            if program.custom and (class_name := program.custom.class_name)
            else None
        ),
        "lm_kwargs": _lm_kwargs(program.lm) if program.lm else None,
        "listeners": [
            {
                "predictor_py": py_str(listener.predictor),
                "field_py": py_str(listener.field),
                "allow_reuse": listener.allow_reuse,
                # BestOfN: an attempt's tokens are not the answer; it arrives whole.
                "live": program.best_of is None,
            }
            for listener in program.listeners
        ],
        # Only the hooks the spec gives a message for; the runtime says nothing at the rest.
        "status": [
            {"hook": hook, "template_py": py_literal(template)}
            for hook, template in program.status
            if template is not None
        ],
        "status_modules": program.status_modules,
        "state_file": program.state_file,
        "evaluation": _evaluation(program),
        "best_of": _best_of(program),
        "curl_body": _curl_body(program),
        # How the chat protocols reach it: field names (None: no such field), and as literals.
        "chat": asdict(program.chat),
        "chat_py": {key: py_literal(value) for key, value in asdict(program.chat).items()},
        "streamed_outputs": sorted(
            {listener.field for listener in program.listeners} & {f.name for f in outputs}
        ),
    }


def _evaluation(program: ProgramModel) -> dict[str, Any] | None:
    """What evals.py declares for a program with examples: metric, threshold, outputs."""
    evaluation = program.evaluation
    if evaluation is None:
        return None
    metric = evaluation.metric
    return {
        "metric": metric.name,
        "field": metric.field,
        "function": metric.function,
        "threshold_py": None if evaluation.threshold is None else py_literal(evaluation.threshold),
        "outputs": [f.name for f in program.signature.outputs],
        "train": None if evaluation.train_file is None else f"{program.name}.train.jsonl",
    }


def _best_of(program: ProgramModel) -> dict[str, Any] | None:
    """What programs.py builds for a BestOfN: the module tried, attempts, reward, threshold."""
    best_of = program.best_of
    if best_of is None:
        return None
    return {
        "module": best_of.module,
        "attempts": best_of.attempts,
        "reward": best_of.reward,
        "threshold_py": py_literal(best_of.threshold),
    }


def _curl_body(program: ProgramModel) -> str:
    """A sample request body to paste into a shell, inside single quotes in a code block."""
    body = json_str({f.name: f.type.sample for f in program.signature.inputs})
    return "{}" if any(c in body for c in "'`") else body


def _program_fields(model: ServiceModel) -> list[FieldModel]:
    """Every field of a request or response model in schemas.py."""
    return [
        field
        for p in model.programs
        for field in (*p.signature.inputs, *p.extra_outputs, *p.signature.outputs)
    ]


def _used_tool_imports(model: ServiceModel) -> list[dict[str, Any]]:
    """Per tool module, the functions that some program calls, sorted."""
    used: dict[str, set[str]] = {}
    for program in model.programs:
        for tool in program.tools:
            used.setdefault(tool.module.rsplit(".", 1)[-1], set()).add(tool.function)
    return [{"name": name, "functions": sorted(used[name])} for name in sorted(used)]


def _custom_modules(model: ServiceModel) -> list[dict[str, Any]]:
    """Per user module file, the classes its stub defines (a class shared by programs: once)."""
    classes: dict[str, dict[str, dict[str, Any]]] = {}
    for program in model.programs:
        if program.custom is None:
            continue
        name = program.custom.module.removeprefix("modules.")
        classes.setdefault(name, {})[program.custom.class_name] = {
            "class_name": program.custom.class_name
        }
    return [
        {"name": name, "classes": [classes[name][c] for c in sorted(classes[name])]}
        for name in sorted(classes)
    ]


def render_data(model: ServiceModel) -> dict[str, Any]:
    """The ``service`` answer given to Copier for ``model``."""
    modules: dict[str, list[ToolModel]] = {}
    for tool in model.tools:
        modules.setdefault(tool.module, []).append(tool)
    annotations = (
        [f.type for sig in model.signatures for f in (*sig.inputs, *sig.outputs)]
        + [arg.type for tool in model.tools for arg in tool.args]
        + [t.returns for t in model.tools]
    )
    return {
        "schema": SCHEMA,
        "name": model.name,
        "package": model.package,
        "title": _text(model.title),
        "description": _text(model.description),
        "has_description": bool(model.description),
        "version": model.version,
        "lm": {"kwargs": _lm_kwargs(model.lm), "model": _text(model.lm.model)},
        "api_key_env": model.lm.api_key_env,
        "signatures": [_signature(s) for s in model.signatures],
        "tool_modules": [
            {
                "name": name.rsplit(".", 1)[-1],
                "tools": [_tool(t) for t in tools],
                "uses_literal": any(
                    t.returns.uses_literal or any(a.type.uses_literal for a in t.args)
                    for t in tools
                ),
            }
            for name, tools in sorted(modules.items())
        ],
        "tools": [_tool(t) for t in model.tools],
        # What each module imports is what it uses (ruff F401 otherwise): programs.py only
        # the signatures and tools some program uses, schemas.py only its programs' types.
        "used_tool_imports": _used_tool_imports(model),
        # Custom modules: the stub files (user-owned) and what programs.py imports from them.
        "custom_modules": _custom_modules(model),
        "used_signatures": sorted({p.signature.class_name for p in model.programs}),
        "signatures_use_literal": any(
            f.type.uses_literal for sig in model.signatures for f in (*sig.inputs, *sig.outputs)
        ),
        "schemas_use_literal": any(f.type.uses_literal for f in _program_fields(model)),
        "schemas_use_dspy_types": any(f.type.uses_dspy_type for f in _program_fields(model)),
        "programs": [_program(p) for p in model.programs],
        "uses_literal": any(t.uses_literal for t in annotations),
        # programs.py builds the tools of its programs with their spec's argument types.
        "programs_use_literal": any(
            arg.type.uses_literal for p in model.programs for t in p.tools for arg in t.args
        ),
        "uses_state": any(p.state_file for p in model.programs),
        # The user's metrics.py: a stub per function some program scores with.
        "metric_functions": sorted(
            {
                p.evaluation.metric.function
                for p in model.programs
                if p.evaluation is not None and p.evaluation.metric.function
            }
        ),
        # The user's rewards.py: a stub per function some BestOfN program scores with.
        "reward_functions": reward_functions(model),
        "server": _server(model.server),
    }


def reward_functions(model: ServiceModel) -> list[str]:
    """The reward functions that programs.py takes from the package's rewards.py, sorted."""
    return sorted({p.best_of.reward for p in model.programs if p.best_of is not None})


def _server(server: ServerSpec) -> dict[str, dict[str, str]]:
    """Each setting the spec sets, as a Python literal and as a ``.env`` value."""
    values = {}
    for path, setting in settings.by_spec_path().items():
        value: Any = server
        for part in path.split("."):
            value = getattr(value, part)
        values[setting.name] = {"py": py_literal(value), "env": _env_value(value)}
    return values


def _env_value(value: Any) -> str:
    """How a default reads in ``.env``: lists comma-separated, booleans lower-case."""
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)
