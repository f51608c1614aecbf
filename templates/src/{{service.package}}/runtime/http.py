"""Failures as HTTP responses: ``{"error": {"code", "message"}}`` with a fitting status."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from .errors import Failure, RunFailed

logger = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """What went wrong, in words safe to show a user."""

    code: str
    message: str


class ErrorResponse(BaseModel):
    """The body of every error response of a program endpoint."""

    error: ErrorBody


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        401: "A valid API key is required.",
        413: "The request body is too large.",
        422: "The input does not validate, or is too long for the model.",
        429: "The LM provider is rate limiting requests.",
        502: "The LM or the program failed.",
        503: "Too many runs in progress, or the server is shutting down.",
        504: "The LM or the program did not finish in time.",
    }.items()
}


STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: status, token, prediction, then done "
        "(or error). See the service's README for the protocol.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


def error_response(failure: Failure, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error response for ``failure``, with Retry-After when known."""
    headers = dict(headers or {})
    if failure.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(failure.retry_after)))
    body = ErrorResponse(error=ErrorBody(code=failure.code, message=failure.message))
    return JSONResponse(body.model_dump(), status_code=failure.status, headers=headers)


async def _run_failed(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RunFailed)
    failure = exc.failure
    if exc.__cause__ is not None:  # a refusal (overloaded, shutting down) is not a failure
        logger.log(failure.log_level, "run failed: %s", failure.code, exc_info=exc.__cause__)
    return error_response(failure)


def add_error_handlers(app: FastAPI) -> None:
    """Register the handler that reports refused and failed runs."""
    app.add_exception_handler(RunFailed, _run_failed)
