"""The numbers every run is held to, and what a client is told past each of them.

The numbers come from the settings (``Settings.run_limits``); each failure is
the answer to a request, or the last event of a stream, past one of them.
"""

from dataclasses import dataclass

from .errors import Failure


@dataclass(frozen=True)
class RunLimits:
    """How long and how many runs may go on, and how streams are paced.

    No defaults: each number is a setting (``Settings.run_limits``), declared
    with its default once, in the template's settings declaration.
    """

    max_concurrent: int  # runs at once
    max_per_caller: int | None  # runs at once per API key (or address); None: no cap
    deadline: float | None  # seconds for a whole run
    idle_timeout: float | None  # seconds between two events of a run
    grace: float  # seconds a stream run goes on while nobody reads it
    log_ttl: float  # seconds an ended run's log is kept
    log_max_events: int  # events kept of one run's log
    reconnect_delay: float  # seconds a client waits before it reconnects (SSE retry)
    keepalive: float  # seconds of silence before a ": ping" comment
    flush_interval: float  # seconds a stream waits after it sent a token, to send more at once
    shutdown_grace: float  # seconds open streams get to finish on shutdown
    max_input_chars: int  # per input field, as text or JSON
    batch_parallelism: int  # items of one batch run at once
    batch_max_items: int  # items in one batch request


OVERLOADED = Failure(503, "overloaded", "Too many requests in progress; retry shortly.", 1.0)
CALLER_BUSY = Failure(
    429, "too_many_runs", "This caller has too many runs in progress; retry shortly.", 1.0
)
TIMED_OUT = Failure(504, "timeout", "The program did not finish in time.")
