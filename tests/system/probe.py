"""Import generated projects and print, as JSON, the spec strings their code holds.

Run as ``python -m tests.system.probe '[["<src dir>", "<package>"], ...]'`` in a fresh
process (each project's modules are imported under its own package name). For
each package it builds the app with ``create_app`` and reads back what the
generated Python made of the spec: OpenAPI paths and descriptions, signature
instructions and field descriptions, Literal values, status templates, tool
descriptions and LM settings, and the HTML of /docs and /redoc, so a test can
compare them with the spec.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
import typing
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "true")

import dspy
from fastapi.testclient import TestClient


def _signatures(module: Any) -> dict[str, Any]:
    found = {}
    for name, value in vars(module).items():
        if not (isinstance(value, type) and issubclass(value, dspy.Signature)):
            continue
        if value.__module__ != module.__name__:
            continue
        found[name] = {
            "instructions": value.instructions,
            "descriptions": {k: f.json_schema_extra["desc"] for k, f in value.fields.items()},
            "literals": {
                k: list(typing.get_args(f.annotation))
                for k, f in value.fields.items()
                if typing.get_origin(f.annotation) is typing.Literal
            },
        }
    return found


def _lm(config: Any) -> dict[str, Any] | None:
    return dataclasses.asdict(config) if config is not None else None


def probe(src: str, package: str) -> dict[str, Any]:
    """What the generated package at ``src`` holds of its spec."""
    sys.path.insert(0, src)
    signatures = importlib.import_module(f"{package}.signatures")
    programs = importlib.import_module(f"{package}.programs")
    settings = importlib.import_module(f"{package}.settings").Settings(_env_file=None)
    app = importlib.import_module(f"{package}.app").create_app(settings)
    schema = app.openapi()
    client = TestClient(app)  # no lifespan: only the documentation pages are read
    pages = {path: client.get(path).text for path in ("/docs", "/redoc")}
    served = {}
    for entry in dataclasses.fields(app.state.programs):
        program = getattr(app.state.programs, entry.name)
        tools = getattr(program.module, "tools", {})
        served[entry.name] = {
            "status": program.status,
            "tools": {name: tool.desc for name, tool in tools.items() if name != "finish"},
            "lm": _lm(getattr(programs, f"{entry.name.upper()}_LM", None)),
        }
    return {
        "paths": sorted(schema["paths"]),
        "title": schema["info"]["title"],
        "description": schema["info"].get("description", ""),
        "operations": {
            path: operations["post"].get("description")
            for path, operations in schema["paths"].items()
            if "post" in operations
        },
        "schemas": {
            name: {key: value.get("description") for key, value in body["properties"].items()}
            for name, body in schema["components"]["schemas"].items()
            if "properties" in body
        },
        "signatures": _signatures(signatures),
        "programs": served,
        "service_lm": _lm(programs.SERVICE_LM),
        "pages": pages,
    }


def main(argv: list[str]) -> None:
    projects = json.loads(argv[0])
    print(json.dumps({package: probe(src, package) for src, package in projects}))


if __name__ == "__main__":
    main(sys.argv[1:])
