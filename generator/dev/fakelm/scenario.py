"""Failure-injection and pacing switches of the fake LM, parsed from a URL path segment.

A client chooses a scenario with its ``api_base`` alone (``.../s/<scenario>/v1``), so any
OpenAI-compatible client, DSPy included, can be pointed at a misbehaving model without code
changes. The grammar is a ``+``-joined list of switches, e.g. ``delay-20ms+break-after-5``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

__all__ = ["DEFAULT_REACT_STEPS", "DEFAULT_WORDS", "Scenario", "ScenarioError", "parse_scenario"]

DEFAULT_WORDS = 20
"""Words in a generated ``str`` field value."""

DEFAULT_REACT_STEPS = 1
"""Tool calls a ReAct agent makes before it calls ``finish``."""

_SWITCH = re.compile(
    r"http-(?P<http>[1-5]\d\d)"
    r"|break-after-(?P<break_after>\d+)"
    r"|stall-after-(?P<stall_after>\d+)"
    r"|delay-(?P<delay>\d+(?:\.\d+)?)ms"
    r"|first-(?P<first>\d+(?:\.\d+)?)ms"
    r"|steps-(?P<steps>\d+)"
    r"|words-(?P<words>\d+)"
    r"|(?P<context_window>context-window)"
    r"|(?P<split_surrogates>split-surrogates)"
    r"|(?P<echo>echo)"
    r"|(?P<needs_demo>needs-demo)"
    r"|(?P<default>default)"
)


class ScenarioError(ValueError):
    """A scenario string holds a switch the fake LM does not know."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """How the fake LM behaves for one request.

    Attributes:
        http_status: Answer every request with this HTTP error status instead of a completion.
        context_window: Answer with OpenAI's 400 ``context_length_exceeded`` error.
        break_after: Send this many content chunks, then drop the connection without ``[DONE]``.
        stall_after: Send this many content chunks, then go silent until the client leaves.
        delay_s: Pause between content chunks, in seconds.
        first_s: Pause before the first content chunk (time to first token), in seconds.
        react_steps: Tool calls a ReAct agent makes before ``finish``.
        words: Words in each generated ``str`` field value.
        split_surrogates: End each sentence of a stream with an emoji whose UTF-16
            surrogate pair is split between two chunks, as a provider may do.
        echo: Answer every ``str`` output field with the text of the prompt's first input,
            so that an eval's score is known in advance (``python -m <package> eval``).
        needs_demo: Answer as ``echo`` does only when the prompt holds a few-shot demo of
            the same output fields, else with prose: a model that an optimizer measurably
            improves (``dspy-forge optimize`` with BootstrapFewShot adds such demos).
    """

    http_status: int | None = None
    context_window: bool = False
    break_after: int | None = None
    stall_after: int | None = None
    delay_s: float = 0.0
    first_s: float = 0.0
    react_steps: int = DEFAULT_REACT_STEPS
    words: int = DEFAULT_WORDS
    split_surrogates: bool = False
    echo: bool = False
    needs_demo: bool = False


@lru_cache(maxsize=256)
def parse_scenario(text: str | None) -> Scenario:
    """Parse ``switch+switch+...`` into a :class:`Scenario`; empty, None and ``default`` are plain.

    Raises:
        ScenarioError: for a switch outside the grammar (a typo must not silently mean "no fault").
    """
    scenario = Scenario()
    if not text:
        return scenario
    for switch in text.split("+"):
        match = _SWITCH.fullmatch(switch.strip())
        if match is None:
            raise ScenarioError(
                f"unknown fake LM scenario switch {switch!r}; expected http-<status>, "
                "break-after-<n>, stall-after-<n>, delay-<ms>ms, first-<ms>ms, steps-<n>, "
                "words-<n>, context-window, split-surrogates, echo, needs-demo or default"
            )
        group = match.lastgroup
        value = match.group(group) if group else None
        if group == "http":
            scenario = replace(scenario, http_status=int(value or 0))
        elif group == "break_after":
            scenario = replace(scenario, break_after=int(value or 0))
        elif group == "stall_after":
            scenario = replace(scenario, stall_after=int(value or 0))
        elif group == "delay":
            scenario = replace(scenario, delay_s=float(value or 0) / 1000)
        elif group == "first":
            scenario = replace(scenario, first_s=float(value or 0) / 1000)
        elif group == "steps":
            scenario = replace(scenario, react_steps=int(value or 0))
        elif group == "words":
            scenario = replace(scenario, words=max(1, int(value or 0)))
        elif group == "context_window":
            scenario = replace(scenario, context_window=True)
        elif group == "split_surrogates":
            scenario = replace(scenario, split_surrogates=True)
        elif group == "echo":
            scenario = replace(scenario, echo=True)
        elif group == "needs_demo":
            scenario = replace(scenario, needs_demo=True)
    return scenario
