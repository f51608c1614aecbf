"""Write a validated spec back as YAML, in normal form.

The normal form keeps only what differs from the defaults, in the model's key
order; loading it gives back the same spec and the same service model (a
property test holds it to that).
"""

from __future__ import annotations

import yaml

from dspy_forge.spec.contract import Spec

SCHEMA_COMMENT = "# yaml-language-server: $schema=https://dspy-forge.dev/schema/spec-v1.json\n"


def dump_spec(spec: Spec) -> str:
    """The spec as YAML text that :func:`dspy_forge.spec.loader.load_spec_text` reads back."""
    data = spec.model_dump(mode="json", exclude_defaults=True)
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return SCHEMA_COMMENT + body
