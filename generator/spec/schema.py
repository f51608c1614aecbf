"""The JSON Schema of the spec, for editors and for docs/spec.md."""

from __future__ import annotations

from typing import Any

from dspy_forge.spec.contract import Spec


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a version-1 spec."""
    schema = Spec.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
