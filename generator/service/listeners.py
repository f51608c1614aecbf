"""Stream listeners: each listened field resolved to the predictor that outputs it.

A listener that DSPy could not attach at run time (no predictor outputs the
field, several do, the field is not text) is refused here, with a located error.
"""

from __future__ import annotations

from dspy_forge.service.model import ListenerModel, SignatureModel
from dspy_forge.spec.contract import ProgramSpec
from dspy_forge.spec.errors import Path as KeyPath
from dspy_forge.spec.errors import SpecError
from dspy_forge.spec.hints import suggest
from dspy_forge.spec.types import parse_type


def custom_listeners(
    raw: ProgramSpec, signature: SignatureModel, path: KeyPath
) -> tuple[tuple[ListenerModel, ...] | None, list[SpecError]]:
    """The listeners of a Custom module, whose predictors only the running service knows.

    Each must name its predictor (as ``named_predictors()`` names it); the service
    checks at start-up that the predictor exists and outputs the field. Here: a
    field that is a final output must be text, and no pair is listened to twice.
    """
    errors: list[SpecError] = []
    types = {f.name: f.type for f in signature.outputs}
    result = []
    seen = set()
    for index, listener in enumerate(raw.stream):
        where = (*path, "stream", index)
        if listener.predictor is None:
            errors.append(
                SpecError(
                    where,
                    "a Custom module's predictors are known only when the service starts: "
                    f"name the one that outputs {listener.field!r} with predictor: "
                    "(as named_predictors() names it, e.g. 'answer.predict')",
                )
            )
            continue
        field_type = types.get(listener.field)
        if field_type is not None and not field_type.is_str:
            errors.append(
                SpecError(
                    (*where, "field"),
                    f"{listener.field!r} is {field_type.annotation}; "
                    "only str fields stream token by token",
                )
            )
            continue
        key = (listener.predictor, listener.field)
        if key in seen:
            twice = f"{listener.field!r} of {listener.predictor!r} is listened to twice"
            errors.append(SpecError(where, twice))
            continue
        seen.add(key)
        result.append(ListenerModel(listener.field, listener.predictor, listener.allow_reuse))
    return (tuple(result) if len(result) == len(raw.stream) else None), errors


def resolve_listeners(
    raw: ProgramSpec,
    predictors: dict[str, tuple[str, ...]],
    signature: SignatureModel,
    path: KeyPath,
) -> tuple[tuple[ListenerModel, ...] | None, list[SpecError]]:
    """The program's listeners, each attached to the one predictor that outputs its field.

    Returns None for the listeners when any of them cannot be attached, with the errors.
    """
    errors: list[SpecError] = []

    def refuse(path: KeyPath, message: str) -> None:
        errors.append(SpecError(path=path, message=message))

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
                refuse(
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
            refuse(
                (*where, "field"),
                f"no predictor of this {raw.module} outputs {listener.field!r}"
                + suggest(listener.field, known),
            )
            continue
        if len(owners) > 1:
            refuse(
                (*where, "predictor"),
                f"{listener.field!r} is output by several predictors ({', '.join(owners)}); "
                "name one",
            )
            continue
        field_type = types.get(listener.field)
        if field_type is None or not field_type.is_str:
            shown = field_type.annotation if field_type else "structured"
            refuse(
                (*where, "field"),
                f"{listener.field!r} is {shown}; only str fields stream token by token",
            )
            continue
        key = (owners[0], listener.field)
        if key in seen:
            refuse(where, f"{listener.field!r} of {owners[0]!r} is listened to twice")
            continue
        seen.add(key)
        result.append(ListenerModel(listener.field, owners[0], listener.allow_reuse))
    return (tuple(result) if len(result) == len(raw.stream) else None), errors
