"""What every part of the spec's contract is built from: pattern types, and the base model.

One home for the patterns a string must match (``PATTERNS``, read by the loader
to say what was expected), so that each section's module adds to the same table.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

# Each pattern a string must match, with what it means for a person reading an error
# (the loader says "expected <meaning>"); filled in by matching() below, its one home.
PATTERNS: dict[str, str] = {}


def matching(pattern: str, meaning: str, max_length: int) -> Any:
    """A string type that must match ``pattern``, described as ``meaning`` in errors."""
    PATTERNS[pattern] = meaning
    return Annotated[str, StringConstraints(pattern=pattern, max_length=max_length)]


class SpecModel(BaseModel):
    """Base of every spec section: immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


# A name that becomes a Python identifier and a URL path segment.
Identifier = matching(
    r"^[A-Za-z_][A-Za-z0-9_]*$",
    "a name of ASCII letters, digits and '_', not starting with a digit "
    "(it becomes a Python name and a URL segment)",
    64,
)
