"""Request bodies as a program's inputs, with a cap on the size of each field."""

import json
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from .text import is_encodable
from .wire import Inputs as Inputs  # the rules the typed client shares


def checked_inputs(
    body: BaseModel, max_chars: int, loc: tuple[str | int, ...] = ("body",)
) -> dict[str, Any]:
    """The body's fields as the program's keyword arguments, each one checked.

    422 names a field that is too long, or that holds text no UTF-8 encoder
    accepts: a lone surrogate, which a JSON ``\\ud800`` escape can carry and
    the LM request could not. Text counts its characters; other values count the
    characters of their JSON.

    The keys are the program's own names of the fields, which differ from the
    public ones (the request model's aliases) only where DSPy's call path takes
    the public name for itself (``config``, ``lm``, ...). Values are passed as
    validated (a ``dspy.Image`` stays an Image).
    """
    inputs = dict(body)
    fields = type(body).model_fields
    for name, value in inputs.items():
        if value is None:
            continue
        text = value if isinstance(value, str) else _json(value)
        public = fields[name].alias or name
        if len(text) > max_chars:
            message = f"{public} has {len(text)} characters; at most {max_chars} are allowed"
            raise _invalid("too_long", (*loc, public), message)
        if not is_encodable(text):
            raise _invalid("unicode", (*loc, public), f"{public} holds a lone surrogate")
    return inputs


def _invalid(kind: str, loc: tuple[str | int, ...], message: str) -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": loc, "msg": message, "input": None}])


def _json(value: Any) -> str:
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return json.dumps(value, default=str, ensure_ascii=False)
