"""Did-you-mean hints, one helper for every message that names what exists."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` was most likely meant to be, ignoring case, or None."""
    options = sorted(set(known))
    by_folded = {option.casefold(): option for option in options}
    if name.casefold() in by_folded and by_folded[name.casefold()] != name:
        return by_folded[name.casefold()]
    match = difflib.get_close_matches(name.casefold(), list(by_folded), n=1, cutoff=0.6)
    return by_folded[match[0]] if match else None


def suggest(name: str, known: Iterable[str], *, what: str = "") -> str:
    """``; did you mean 'x'?`` or the list of what exists, to end an error message."""
    options = sorted(set(known))
    guess = closest(name, options)
    if guess is not None:
        return f"; did you mean {guess!r}?"
    if not options:
        return f" (no {what} defined)" if what else ""
    shown = ", ".join(repr(option) for option in options[:12])
    more = f", ... ({len(options)} in all)" if len(options) > 12 else ""
    return f" (expected one of: {shown}{more})"
