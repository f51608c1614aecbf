"""Counters the fake LM keeps so tests can see what clients did to it.

The main use is proving behaviour that is invisible from the client side, e.g. that a service
cancelled its upstream LM stream when its own client went away (``streams_disconnected``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["COUNTERS", "Counters", "Stats"]

COUNTERS = (
    "requests",
    "completions",
    "completions_disconnected",
    "errors",
    "streams_started",
    "streams_completed",
    "streams_disconnected",
    "connections_aborted",
    "streams_open",
    "streams_open_peak",
    "chunks_sent",
)
"""Counter names.

``requests``: chat completion requests received; ``completions``: non-streaming answers sent;
``completions_disconnected``: the client left before a non-streaming answer was sent;
``errors``: injected HTTP errors; ``streams_started``/``streams_completed``: streams begun and
ended with ``[DONE]``; ``streams_disconnected``: the client left before the stream ended;
``connections_aborted``: the server dropped a connection on purpose (``break-after-<n>``);
``streams_open``: streams in progress now; ``streams_open_peak``: the most streams in progress
at once since the last reset (a reset starts it from the streams open then);
``chunks_sent``: content chunks written.
"""


class Counters:
    """One set of counters: the server total, or one scenario's share."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: dict[str, int] = dict.fromkeys(COUNTERS, 0)

    def reset(self) -> None:
        """Zero every counter except ``streams_open``, which describes the present (and the peak
        starts again from it)."""
        open_now = self.values["streams_open"]
        self.values = dict.fromkeys(COUNTERS, 0)
        self.values["streams_open"] = self.values["streams_open_peak"] = open_now

    def add(self, name: str, by: int) -> None:
        """Add ``by`` to counter ``name``; a new high of ``streams_open`` raises its peak."""
        values = self.values
        values[name] += by
        if name == "streams_open" and values[name] > values["streams_open_peak"]:
            values["streams_open_peak"] = values[name]


class Stats:
    """Server-wide counters plus the same counters per scenario (keyed by its path text)."""

    def __init__(self) -> None:
        self.total = Counters()
        self.scenarios: dict[str, Counters] = {}

    def bump(self, scenario: str, name: str, by: int = 1) -> None:
        """Add ``by`` to counter ``name`` in the total and in ``scenario``'s counters."""
        self.total.add(name, by)
        counters = self.scenarios.get(scenario)
        if counters is None:
            counters = self.scenarios[scenario] = Counters()
        counters.add(name, by)

    def reset(self) -> None:
        """Zero all counters (open streams stay counted as open)."""
        self.total.reset()
        for counters in self.scenarios.values():
            counters.reset()

    def snapshot(self) -> dict[str, Any]:
        """``{counter: n, ..., "scenarios": {scenario: {counter: n, ...}}}``."""
        return {
            **self.total.values,
            "scenarios": {name: dict(c.values) for name, c in self.scenarios.items()},
        }
