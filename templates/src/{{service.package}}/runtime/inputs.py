"""Request bodies as a program's inputs, with a cap on the size of each field."""

import json
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel


def checked_inputs(
    body: BaseModel, max_chars: int, loc: tuple[str | int, ...] = ("body",)
) -> dict[str, Any]:
    """The body's fields as keyword arguments; 422 names a field longer than ``max_chars``.

    Text counts its characters; other values count the characters of their JSON.
    Values are passed as validated (a ``dspy.Image`` stays an Image).
    """
    inputs = dict(body)
    for name, value in inputs.items():
        if value is None:
            continue
        size = len(value) if isinstance(value, str) else len(_json(value))
        if size > max_chars:
            raise RequestValidationError(
                [
                    {
                        "type": "too_long",
                        "loc": (*loc, name),
                        "msg": f"{name} has {size} characters; at most {max_chars} are allowed",
                        "input": None,
                        "ctx": {"max_length": max_chars},
                    }
                ]
            )
    return inputs


def _json(value: Any) -> str:
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return json.dumps(value, default=str)
