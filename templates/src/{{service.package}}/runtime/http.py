"""Failures of a run as HTTP responses: ``{"error": {"code", "message"}}``."""

import logging
from typing import Any

import dspy
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from .errors import Failure, describe
from .program import ServedProgram

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
        429: "The LM provider is rate limiting requests.",
        502: "The LM or the program failed.",
        504: "The LM did not answer in time.",
    }.items()
}


class RunFailed(Exception):
    """A program run failed; carries how to report it."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.code)
        self.failure = failure


async def run_to_completion(program: ServedProgram, inputs: dict[str, Any]) -> dspy.Prediction:
    """Run ``program``, turning any failure into :class:`RunFailed`."""
    try:
        return await program.predict(inputs)
    except Exception as exc:
        raise RunFailed(describe(exc)) from exc


async def _run_failed(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RunFailed)
    failure = exc.failure
    logger.log(failure.log_level, "run failed: %s", failure.code, exc_info=exc.__cause__)
    headers = {}
    if failure.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(failure.retry_after)))
    body = ErrorResponse(error=ErrorBody(code=failure.code, message=failure.message))
    return JSONResponse(body.model_dump(), status_code=failure.status, headers=headers)


def add_error_handlers(app: FastAPI) -> None:
    """Register the handler that reports failed runs."""
    app.add_exception_handler(RunFailed, _run_failed)
