"""Keyword names that DSPy's call path takes for itself, and the names that avoid them.

A generated service runs a program as ``module.acall(**inputs)``, so every input
field is a keyword argument of DSPy's call machinery before it is a signature
field. Some keywords never reach the signature: ``Predict`` pops ``config`` (the
LM call's settings, ``api_base`` among them, sent with the server's key), ``lm``,
``demos`` and ``signature``, refuses ``new_signature``, and takes a ``prediction``
shaped like OpenAI's predicted outputs; ``ReAct`` pops ``max_iters``; the
``with_callbacks`` wrapper and ``Module.acall`` bind ``instance`` and ``self``.
A request field named like one of them would let a client steer the LM call.

So an input field with such a name keeps it on the HTTP side (the pydantic
request model's alias) and gets an internal name inside the program (the DSPy
signature's field and the request model's attribute): ``config`` becomes
``config_``. A tool argument cannot be renamed that way (the LM calls the tool
by its argument names), so those names are refused for tool arguments.

``tests/unit/test_dspy_calls.py`` reads these names back from DSPy's source, so a
DSPy upgrade that consumes a new keyword fails the suite instead of opening a hole.
"""

from __future__ import annotations

from collections.abc import Iterable

# Keywords consumed by Module.__call__/acall, with_callbacks, Predict, ChainOfThought,
# ReAct and streamify before (or instead of) the signature's fields.
CALL_KWARGS = frozenset(
    {
        "_trace",
        "completions",
        "config",
        "demos",
        "instance",
        "lm",
        "max_iters",
        "new_signature",
        "prediction",
        "self",
        "signature",
    }
)
# Keywords that Tool.__call__/acall and with_callbacks bind before the tool's own.
TOOL_CALL_KWARGS = frozenset({"instance", "self"})


def internal_names(names: Iterable[str], inputs: Iterable[str]) -> dict[str, str]:
    """The name inside the program of each input, given every field name of its signature.

    An input named like a call keyword gets trailing underscores until the name
    is neither a call keyword nor another field's; the rest keep their names.
    """
    taken = set(names)
    renamed: dict[str, str] = {}
    for name in inputs:
        internal = name
        if name in CALL_KWARGS:
            internal = f"{name}_"
            while internal in taken or internal in CALL_KWARGS:
                internal += "_"
            taken.add(internal)
        renamed[name] = internal
    return renamed
