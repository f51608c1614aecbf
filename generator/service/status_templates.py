"""Status templates: a template names only the placeholders its hook offers."""

from __future__ import annotations

import string

from dspy_forge.spec.hints import closest


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
