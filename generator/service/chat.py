"""Resolve how the chat protocols reach a program: the spec's ``chat``, with its defaults.

OpenAI Chat Completions and the AI SDK's ``useChat`` speak in messages; a
program takes a signature's fields. The mapping is resolved here, once, so the
templates only render it: the input that receives the last user message
(default: the first ``str`` input), the ``History`` input that receives the
earlier turns (default: the first one, if any), and the output that is the
reply's text (default: the first streamed ``str`` output, else the first
``str`` output). A name the spec gives must exist and have the right type; a
program with no ``str`` input or output still chats, through JSON (see
``runtime/protocols/base.py``).
"""

from __future__ import annotations

from collections.abc import Callable

from dspy_forge.service.model import ChatModel, FieldModel, ListenerModel, SignatureModel
from dspy_forge.spec.contract import ChatSpec
from dspy_forge.spec.errors import Path as KeyPath
from dspy_forge.spec.errors import SpecError
from dspy_forge.spec.hints import suggest

HISTORY = "dspy.History"


def _is_str(field: FieldModel) -> bool:
    return field.type.annotation == "str"


def _is_history(field: FieldModel) -> bool:
    return field.type.annotation == HISTORY


def _named(
    name: str,
    fields: tuple[FieldModel, ...],
    kind: str,
    wanted: tuple[str, Callable[[FieldModel], bool]],
    where: KeyPath,
    errors: list[SpecError],
) -> str | None:
    """``name`` if it is one of ``fields`` (the signature's ``kind``s) of the wanted type."""
    found = next((field for field in fields if field.name == name), None)
    if found is None:
        known = [field.name for field in fields]
        errors.append(
            SpecError(where, f"no {kind} named {name!r}" + suggest(name, known, what=f"{kind}s"))
        )
        return None
    shown, fits = wanted
    if not fits(found):
        errors.append(SpecError(where, f"{name!r} is {found.type.annotation}; it must be {shown}"))
        return None
    return name


def resolve_chat(
    raw: ChatSpec,
    signature: SignatureModel,
    listeners: tuple[ListenerModel, ...],
    reasoning: bool,
    path: KeyPath,
) -> tuple[ChatModel | None, list[SpecError]]:
    """The program's chat mapping, or None and located errors."""
    errors: list[SpecError] = []
    inputs, outputs = signature.inputs, signature.outputs
    text = ("str", _is_str)
    if raw.message is not None:
        message = _named(raw.message, inputs, "input", text, (*path, "message"), errors)
    else:
        message = next((field.name for field in inputs if _is_str(field)), None)
    if raw.history is False:
        history = None
    elif raw.history is not None:
        wanted = ("History", _is_history)
        history = _named(raw.history, inputs, "input", wanted, (*path, "history"), errors)
    else:
        history = next((field.name for field in inputs if _is_history(field)), None)
    if raw.content is not None:
        content = _named(raw.content, outputs, "output", text, (*path, "content"), errors)
    else:
        streamed = {listener.field for listener in listeners}
        texts = [field.name for field in outputs if _is_str(field)]
        content = next((name for name in texts if name in streamed), None)
        content = content or next(iter(texts), None)
    if errors:
        return None, errors
    return ChatModel(message, history, content, "reasoning" if reasoning else None), []
