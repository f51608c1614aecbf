"""The OpenAPI document as a client generator reads it: auth, streams and events.

FastAPI's own document lacks or misstates three things a generated client needs:

- the API key schemes (``Authorization: Bearer`` and ``X-API-Key``), so that
  clients take a key and Swagger UI has an Authorize button; operations need
  one of them exactly when the service has keys, except its open paths;
- the payloads of the stream's events: ``text/event-stream`` is described as
  a string (OpenAPI 3.1 validators reject FastAPI's SSE ``itemSchema``), and
  each event's data schema is a component, listed per stream operation under
  ``x-sse-events`` with the program's own response model for ``prediction``;
- no JSON body for a stream's 200, which FastAPI adds from the route's default
  response class (a generated client would call ``.json()`` on the stream).
"""

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .events import DoneEvent, ErrorEvent, StatusEvent, TokenEvent

SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API key of API_KEYS."},
    "apiKeyAuth": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key of API_KEYS.",
    },
}
REQUIRED = [{"bearerAuth": []}, {"apiKeyAuth": []}]
UNAUTHORIZED = {
    "description": "A valid API key is required.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}
EVENTS: dict[str, type[BaseModel]] = {
    "status": StatusEvent,
    "token": TokenEvent,
    "error": ErrorEvent,
    "done": DoneEvent,
}


def install_openapi(
    app: FastAPI,
    *,
    keys: bool,
    open_paths: Iterable[str],
    streams: dict[str, type[BaseModel]],
) -> None:
    """Replace ``app.openapi`` with one that completes FastAPI's document (built once).

    ``streams`` maps each stream path to the response model its ``prediction``
    event carries.
    """
    opened = frozenset(open_paths)

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            _add_security(document, keys, opened)
            _add_events(document, streams)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def _add_security(document: dict[str, Any], keys: bool, opened: frozenset[str]) -> None:
    components = document.setdefault("components", {})
    components["securitySchemes"] = SCHEMES
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            if not keys or path in opened:
                operation["security"] = []
                continue
            operation["security"] = REQUIRED
            operation.setdefault("responses", {}).setdefault("401", UNAUTHORIZED)


def _add_events(document: dict[str, Any], streams: dict[str, type[BaseModel]]) -> None:
    models = [*EVENTS.values(), *streams.values()]
    _, definitions = models_json_schema(
        [(model, "serialization") for model in models],
        ref_template="#/components/schemas/{model}",
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in definitions.get("$defs", {}).items():
        schemas.setdefault(name, schema)
    for path, response in streams.items():
        operation = document["paths"][path]["post"]
        events = {name: _ref(model) for name, model in EVENTS.items()}
        events["prediction"] = {
            "type": "object",
            "properties": {"outputs": _ref(response), "request_id": {"type": "string"}},
            "required": ["outputs", "request_id"],
        }
        content = operation["responses"]["200"]["content"]
        # The route's default response class adds an empty JSON body; a stream has none.
        content.pop("application/json", None)
        content["text/event-stream"]["x-sse-events"] = dict(sorted(events.items()))


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}
