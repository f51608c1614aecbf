"""inputs.py: strict request models, and each input field checked before a run."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError
from forge_service.runtime.inputs import Inputs, checked_inputs
from pydantic import Field, ValidationError


class Request(Inputs):
    question: str
    strict: bool = False
    count: int | None = None
    tags: list[str] | None = None
    # A reserved input: internal name config_, public name config.
    config_: dict[str, Any] | None = Field(None, alias="config")


def errors_of(excinfo: pytest.ExceptionInfo[RequestValidationError]) -> list[dict[str, Any]]:
    return list(excinfo.value.errors())


def test_inputs_refuses_an_unknown_field() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Request.model_validate({"question": "q", "questoin": "typo"})
    assert [error["type"] for error in excinfo.value.errors()] == ["extra_forbidden"]


@pytest.mark.parametrize(
    ("field", "value"), [("strict", 0), ("strict", "true"), ("count", "3"), ("question", 5)]
)
def test_inputs_does_not_coerce_a_value_of_another_type(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        Request.model_validate({"question": "q", field: value})


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_inputs_refuses_nan_and_infinities(number: str) -> None:
    class Numbers(Inputs):
        x: float

    with pytest.raises(ValidationError):
        Numbers.model_validate_json(f'{{"x": {number}}}')


def test_checked_inputs_gives_the_programs_own_names_and_the_values_as_validated() -> None:
    body = Request.model_validate({"question": "q", "config": {"api_base": "x"}, "count": 2})
    inputs = checked_inputs(body, 100)
    assert inputs == {
        "question": "q",
        "strict": False,
        "count": 2,
        "tags": None,
        "config_": {"api_base": "x"},
    }


def test_checked_inputs_names_a_field_over_the_cap_by_its_public_name() -> None:
    body = Request.model_validate({"question": "q", "config": {"k": "v" * 20}})
    with pytest.raises(RequestValidationError) as excinfo:
        checked_inputs(body, 10)
    (error,) = errors_of(excinfo)
    assert error["type"] == "too_long"
    assert error["loc"] == ("body", "config")
    assert error["msg"] == "config has 29 characters; at most 10 are allowed"
    assert error["input"] is None


def test_checked_inputs_counts_text_by_characters_and_other_values_by_their_json() -> None:
    tags = ["é" * 3, "b"]
    width = len(json.dumps(tags, ensure_ascii=False))
    checked_inputs(Request(question="é" * 5, tags=tags), max(5, width))
    with pytest.raises(RequestValidationError):
        checked_inputs(Request(question="q", tags=tags), width - 1)


def test_checked_inputs_refuses_a_lone_surrogate_naming_its_field() -> None:
    body = Request.model_validate(json.loads('{"question": "a\\ud800b"}'))  # as FastAPI reads it
    with pytest.raises(RequestValidationError) as excinfo:
        checked_inputs(body, 100)
    (error,) = errors_of(excinfo)
    assert (error["type"], error["loc"]) == ("unicode", ("body", "question"))
    assert "\ud800" not in error["msg"]


def test_checked_inputs_refuses_a_lone_surrogate_inside_a_structured_value() -> None:
    body = Request.model_validate(json.loads('{"question": "q", "tags": ["\\udc00"]}'))
    with pytest.raises(RequestValidationError) as excinfo:
        checked_inputs(body, 100)
    assert errors_of(excinfo)[0]["loc"] == ("body", "tags")


def test_checked_inputs_places_errors_under_the_given_location() -> None:
    with pytest.raises(RequestValidationError) as excinfo:
        checked_inputs(Request(question="longer", strict=True), 4, ("body", "inputs", 3))
    assert errors_of(excinfo)[0]["loc"] == ("body", "inputs", 3, "question")


def test_checked_inputs_skips_fields_left_empty() -> None:
    class Optional(Inputs):
        question: str
        note: str | None = None

    assert checked_inputs(Optional(question="q"), 1) == {"question": "q", "note": None}
