"""DSPy's ChatAdapter completions, read as they stream: one field's value, chunk by chunk."""

from __future__ import annotations

import re

_MARKER = re.compile(r"\[\[ ## (\w+) ## \]\]")


class FieldScan:
    """Pick one field's text out of a ChatAdapter completion as its chunks arrive."""

    def __init__(self, field: str) -> None:
        self.header = re.compile(rf"\[\[ ## {re.escape(field)} ## \]\]")
        self.text = ""  # the whole completion so far
        self.start: int | None = None  # where the field's value starts in ``text``
        self.sent = 0  # characters of the (stripped) value relayed so far
        self.ended = False

    def feed(self, chunk: str) -> str:
        """The next piece of the field's value, held back while it may be a marker."""
        self.text += chunk
        if self.ended:
            return ""
        if self.start is None:
            match = self.header.search(self.text)
            if match is None:
                return ""
            self.start = match.end()
        value = self.text[self.start :].lstrip()
        end = value.find("[[")
        if end >= 0 and _MARKER.match(value, end):
            self.ended = True
            value = value[:end]
        elif end >= 0 and len(value) - end < 64:
            value = value[:end]  # maybe the start of a marker: wait for more
        value = value.rstrip()  # blank lines before a marker are not part of the value
        piece = value[self.sent :]
        self.sent = max(self.sent, len(value))
        return piece


def field_value(text: str, field: str) -> str | None:
    """The final value of ``field`` in a whole ChatAdapter completion."""
    match = re.search(rf"\[\[ ## {field} ## \]\]\s*(.*?)\s*(?=\[\[ ## \w+ ## \]\]|$)", text, re.S)
    return match.group(1) if match else None
