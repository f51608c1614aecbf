"""What a failed run tells the client: an HTTP status, a stable code, a safe message.

Messages never carry provider text, stack traces or secrets: they are written
here, per kind of failure. The details go to the log.
"""

import logging
from dataclasses import dataclass

from dspy.utils.exceptions import (
    AdapterParseError,
    ContextWindowExceededError,
    LMAuthError,
    LMConfigurationError,
    LMRateLimitError,
    LMTimeoutError,
    LMTransportError,
)


@dataclass(frozen=True)
class Failure:
    """A failure as the API reports it."""

    status: int
    code: str
    message: str
    retry_after: float | None = None
    log_level: int = logging.ERROR


class RunFailed(Exception):
    """A run failed or was refused; carries how to report it.

    ``run_id``: the run's, when it had started (a stream's run that failed
    before its first event), so the error response can name it.
    """

    def __init__(self, failure: Failure, run_id: str | None = None) -> None:
        super().__init__(failure.code)
        self.failure = failure
        self.run_id = run_id


def _timed_out(exc: BaseException) -> bool:
    """Whether a transport error was a timeout somewhere down its cause chain."""
    cause: BaseException | None = exc
    while cause is not None:
        if (
            isinstance(cause, TimeoutError)
            or "Timeout" in type(cause).__name__
            or "timed out" in str(cause)
        ):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def describe(exc: BaseException) -> Failure:
    """Classify an exception raised while running a program."""
    if isinstance(exc, LMAuthError):
        return Failure(502, "upstream_auth", "The language model provider refused our credentials.")
    if isinstance(exc, LMRateLimitError):
        return Failure(
            429,
            "rate_limited",
            "The language model provider is rate limiting requests; retry later.",
            retry_after=exc.retry_after,
            log_level=logging.WARNING,
        )
    if isinstance(exc, LMTimeoutError | TimeoutError):
        return Failure(504, "timeout", "The language model did not answer in time.")
    if isinstance(exc, ContextWindowExceededError):
        return Failure(
            422,
            "context_window_exceeded",
            "The input is too long for the language model's context window.",
            log_level=logging.WARNING,
        )
    if isinstance(exc, AdapterParseError):
        return Failure(502, "unparsable_output", "The language model's answer could not be parsed.")
    if isinstance(exc, LMConfigurationError):
        # Not the request's fault, and over once the operator sets the key: like /readyz, 503.
        return Failure(503, "lm_not_configured", "The language model is not configured.")
    if isinstance(exc, LMTransportError) and _timed_out(exc):
        return Failure(504, "timeout", "The language model did not answer in time.")
    if isinstance(exc, LMTransportError):
        return Failure(502, "upstream_unavailable", "The language model could not be reached.")
    return Failure(502, "upstream_error", "The program failed; see the server log.")
