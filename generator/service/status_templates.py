"""Status templates: a template names only the placeholders its hook offers."""

from __future__ import annotations

import string

from dspy_forge.spec.contract import HOOKS, PLACEHOLDERS, ProgramSpec
from dspy_forge.spec.errors import Path as KeyPath
from dspy_forge.spec.errors import SpecError
from dspy_forge.spec.hints import closest


def resolve_status(
    raw: ProgramSpec, path: KeyPath
) -> tuple[tuple[tuple[str, str | None], ...] | None, list[SpecError]]:
    """(hook, template) for every hook, or None when a template is wrong; and the errors."""
    errors = []
    for hook in HOOKS:
        template = getattr(raw.status, hook)
        if template is not None and (problem := template_problem(template, PLACEHOLDERS[hook])):
            errors.append(SpecError((*path, "status", hook), problem))
    status = tuple((hook, getattr(raw.status, hook)) for hook in HOOKS)
    return (None if errors else status), errors


def template_problem(template: str, allowed: frozenset[str]) -> str | None:
    """What is wrong with ``template`` for a hook offering ``allowed``, or None."""
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
