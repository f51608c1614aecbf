"""The typed client's exceptions: one class per kind of the service's error codes.

Every error the service answers has one body, ``{"error": {"code", "message",
"request_id"}}`` (docs/protocol.md, *Errors*), and a stream's ``error`` event
the same code and message. The client raises the class of the code, so a
caller catches ``TooManyRequests`` rather than comparing strings; a code this
client does not know (a newer service) is still a :class:`ServiceError`.
Imports the standard library and httpx only (see ``client_core.py``).
"""

from typing import Any

import httpx


class ServiceError(Exception):
    """An error the service reported: its code, message and the request's id.

    ``status`` is the HTTP status (``None`` for an ``error`` event of a stream),
    ``retry_after`` the seconds the service asked to wait (``Retry-After``), and
    ``fields`` the reasons an ``invalid_input`` gives, as the service wrote them.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        fields: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after
        self.fields = fields or []


class Unauthorized(ServiceError):
    """No accepted API key (``unauthorized``)."""


class ValidationFailed(ServiceError):
    """The request was refused as sent: a field, the JSON, its size or its pace."""


class NotFound(ServiceError):
    """No such path, or not with this method."""


class RunNotFound(NotFound):
    """No such run: unknown, expired, or another caller's (``run_not_found``)."""


class ResumeExpired(ServiceError):
    """The events after the position asked for are no longer kept (``resume_expired``)."""


class TooManyRequests(ServiceError):
    """This caller has too many runs, or the LM provider is rate limiting; see ``retry_after``."""


class Unavailable(ServiceError):
    """The service cannot take the run now: overloaded, shutting down, no LM or store."""


class Timeout(ServiceError):
    """The LM or the program did not finish in time (``timeout``)."""


class ContextWindowExceeded(ServiceError):
    """The input is too long for the model (``context_window_exceeded``)."""


class UpstreamFailed(ServiceError):
    """The LM refused, failed, could not be reached, or answered what cannot be parsed."""


class RunCancelled(ServiceError):
    """The run was cancelled (``cancelled``)."""


class RunLost(ServiceError):
    """The replica running the run stopped answering (``run_lost``), or this reader fell behind."""


class InternalError(ServiceError):
    """A bug in the service; its log has the traceback under the request id."""


class ConnectionLost(ServiceError):
    """The client's own: a stream's connection broke and could not be resumed."""


ERRORS: dict[str, type[ServiceError]] = {
    "unauthorized": Unauthorized,
    "invalid_input": ValidationFailed,
    "invalid_json": ValidationFailed,
    "invalid_body": ValidationFailed,
    "payload_too_large": ValidationFailed,
    "request_timeout": ValidationFailed,
    "bad_last_event_id": ValidationFailed,
    "not_found": NotFound,
    "method_not_allowed": NotFound,
    "run_not_found": RunNotFound,
    "resume_expired": ResumeExpired,
    "rate_limited": TooManyRequests,
    "too_many_runs": TooManyRequests,
    "overloaded": Unavailable,
    "shutting_down": Unavailable,
    "store_unavailable": Unavailable,
    "lm_not_configured": Unavailable,
    "timeout": Timeout,
    "context_window_exceeded": ContextWindowExceeded,
    "upstream_auth": UpstreamFailed,
    "upstream_unavailable": UpstreamFailed,
    "upstream_error": UpstreamFailed,
    "unparsable_output": UpstreamFailed,
    "cancelled": RunCancelled,
    "run_lost": RunLost,
    "slow_reader": RunLost,
    "internal_error": InternalError,
}


def service_error(code: str, message: str, **details: Any) -> ServiceError:
    """The exception of ``code`` (a :class:`ServiceError` for a code not listed)."""
    return ERRORS.get(code, ServiceError)(code, message, **details)


def error_of(response: httpx.Response) -> ServiceError:
    """The exception an error response stands for; ``response`` must have been read.

    A body that is not the service's (a proxy's own page, say) still gives a
    :class:`ServiceError`, with code ``http_<status>``.
    """
    try:
        body = response.json()
        error = body["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        error, code = {}, f"http_{response.status_code}"
        message = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    return error_from_body(
        error,
        code,
        message,
        status=response.status_code,
        request_id=response.headers.get("x-request-id"),
        retry_after=_seconds(response.headers.get("retry-after")),
    )


def error_from_body(
    error: Any, code: str, message: str, *, request_id: str | None, **details: Any
) -> ServiceError:
    """The exception of one ``{"code", "message", "request_id", "fields"}`` object."""
    if isinstance(error, dict):
        request_id = error.get("request_id") or request_id
        fields = error.get("fields")
        if isinstance(fields, list):
            details["fields"] = fields
    return service_error(code, message, request_id=request_id, **details)


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from this service, and not worth a parser
