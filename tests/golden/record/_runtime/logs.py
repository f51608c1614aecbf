"""Structured logs with a request id, accepted from X-Request-ID or made up.

The id is set by ``http.RequestBoundary`` and kept in a context variable: the
request's tasks (a run's task copies the context it was created in) log it,
and every stream event and error body carries it.
"""

import contextlib
import json
import logging
import re
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

REQUEST_ID_HEADER = b"x-request-id"
_request_id: ContextVar[str] = ContextVar("request_id", default="")
_run_id: ContextVar[str] = ContextVar("run_id", default="")
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def current_request_id() -> str:
    """The id of the request being served, or "" outside one."""
    return _request_id.get()


@contextlib.contextmanager
def request_id_bound(request_id: str) -> Iterator[None]:
    """Make ``request_id`` the current request's id for the ``with`` block."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


@contextlib.contextmanager
def run_id_bound(run_id: str) -> Iterator[None]:
    """Make ``run_id`` the current run's id for the ``with`` block (and tasks it creates)."""
    token = _run_id.set(run_id)
    try:
        yield
    finally:
        _run_id.reset(token)


def current_run_id() -> str:
    """The id of the run whose task is running, or "" outside one."""
    return _run_id.get()


def valid_request_id(given: str) -> bool:
    """Whether a client's X-Request-ID is safe to log and return as it is."""
    return _VALID_ID.match(given) is not None


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, error."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", ""),
        }
        if http := getattr(record, "http", None):
            entry["http"] = http  # an access line: method, path, status, ms
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: str, level: str) -> None:
    """Send the root logger's records to stderr as JSON lines or as plain text."""
    handler = logging.StreamHandler()
    handler.addFilter(_RequestIdFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
