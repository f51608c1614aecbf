"""Every error as one JSON body, ``{"error": {"code", "message", "request_id"}}``.

Failures of a run, refused requests, validation errors, Starlette's own 404 and
405, and exceptions nobody caught all leave through here, so a client (or a
client generated from the OpenAPI document) reads one shape. Nothing a client
sent is echoed: FastAPI's default 422 body repeats the input, which fails to
encode when it holds ``NaN`` or a lone surrogate and turned one character into
a bare 500.
"""

import logging
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import Failure, RunFailed
from .logs import REQUEST_ID_HEADER, current_request_id, request_id_bound, valid_request_id

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("access")

INTERNAL = Failure(500, "internal_error", "The service failed; see the server log.")
INVALID_INPUT = "invalid_input"


class FieldError(BaseModel):
    """One reason a request does not validate."""

    loc: list[str | int] = Field(description="Where: 'body', then keys and list indexes.")
    message: str
    type: str = Field(description="A stable kind, e.g. 'missing', 'extra_forbidden'.")


class ErrorBody(BaseModel):
    """What went wrong, in words safe to show a user."""

    code: str
    message: str
    request_id: str = Field(default_factory=current_request_id)
    fields: list[FieldError] | None = Field(
        None, description="For invalid_input: every field that does not validate."
    )


class ErrorResponse(BaseModel):
    """The body of every error response of the service."""

    error: ErrorBody


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "The request body is not valid JSON or UTF-8.",
        401: "A valid API key is required.",
        408: "The request body did not arrive in time.",
        413: "The request body is too large.",
        422: "The input does not validate, or is too long for the model.",
        429: "Too many runs of this caller, or the LM provider is rate limiting requests.",
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


def error_response(
    failure: Failure,
    headers: dict[str, str] | None = None,
    fields: list[FieldError] | None = None,
) -> JSONResponse:
    """The JSON error response for ``failure``, with Retry-After when known."""
    headers = dict(headers or {})
    if failure.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(failure.retry_after)))
    error = ErrorBody(code=failure.code, message=failure.message, fields=fields)
    body = ErrorResponse(error=error)
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=failure.status, headers=headers
    )


def _safe(text: str) -> str:
    """``text`` as it can be encoded: lone surrogates and the like escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def field_errors(errors: Any) -> list[FieldError]:
    """Pydantic's errors without the input they refused (it may not even encode)."""
    return [
        FieldError(
            loc=[part if isinstance(part, int) else _safe(str(part)) for part in error["loc"]],
            message=_safe(str(error["msg"])),
            type=str(error["type"]),
        )
        for error in errors
    ]


async def _run_failed(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RunFailed)
    failure = exc.failure
    if exc.__cause__ is not None:  # a refusal (overloaded, shutting down) is not a failure
        logger.log(failure.log_level, "run failed: %s", failure.code, exc_info=exc.__cause__)
    return error_response(failure)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = field_errors(exc.errors())
    if any(field.type == "json_invalid" for field in fields):
        failure = Failure(400, "invalid_json", "The request body is not valid JSON.")
        return error_response(failure)
    failure = Failure(422, INVALID_INPUT, "The request does not validate; see its fields.")
    return error_response(failure, fields=fields)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code, message = _HTTP_ERRORS.get(exc.status_code, ("http_error", "The request failed."))
    return error_response(Failure(exc.status_code, code, message), dict(exc.headers or {}))


_HTTP_ERRORS = {
    400: ("invalid_body", "The request body could not be read (not UTF-8 or not JSON)."),
    404: ("not_found", "No such path."),
    405: ("method_not_allowed", "The path does not take this method."),
}


def add_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the service's JSON shape."""
    app.add_exception_handler(RunFailed, _run_failed)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http_error)


class RequestBoundary:
    """The outermost layer: a request id, an access log line and a JSON 500 for every crash.

    The id is taken from X-Request-ID when it is 1-128 safe characters, else
    made up; it is returned in the response header, logged, and carried by
    every event and error body. An exception that escapes the app before the
    response started becomes the service's 500 (with the id) instead of
    Starlette's plain-text one; one that escapes mid-stream is logged and the
    connection is closed, as HTTP allows nothing else then.

    With ``access_log``, each request ends with one line on the ``access``
    logger (method, path, status, milliseconds; a stream when it ends), in
    the service's log format and with the request id, which uvicorn's own
    access log has neither of.
    """

    def __init__(self, app: ASGIApp, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == REQUEST_ID_HEADER), ""
        )
        request_id = given if valid_request_id(given) else uuid.uuid4().hex
        started = False
        status = 500
        began = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        with request_id_bound(request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
                if started:
                    raise
                await error_response(INTERNAL)(scope, receive, send_with_id)
            finally:
                if self.access_log:
                    _log_access(scope, status, time.perf_counter() - began)


def _log_access(scope: Scope, status: int, seconds: float) -> None:
    method, path = scope["method"], scope["path"]
    milliseconds = round(seconds * 1000, 1)
    access = {"method": method, "path": path, "status": status, "ms": milliseconds}
    access_logger.info(
        "%s %s %d %.1f ms", method, path, status, milliseconds, extra={"http": access}
    )
