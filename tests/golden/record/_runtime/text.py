"""Text from an LM or a client, made safe to encode as JSON and UTF-8.

A provider may split a character outside the Basic Multilingual Plane between
two stream chunks, each then holding half of a UTF-16 surrogate pair; DSPy joins
the chunks into a ``str`` holding both halves as two code points, which no
UTF-8 encoder accepts. So the stream holds a trailing high surrogate back until
the next chunk, pairs are joined into their character, and a surrogate left
alone becomes U+FFFD.
"""

from typing import Any

_HIGH = range(0xD800, 0xDC00)


def clean_text(text: str) -> str:
    """``text`` with surrogate pairs joined and lone surrogates replaced."""
    if is_encodable(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def clean_value(value: Any) -> Any:
    """:func:`clean_text` applied to every string in a JSON-like value."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean_value(item) for item in value]
    if isinstance(value, dict):
        return {clean_text(str(key)): clean_value(item) for key, item in value.items()}
    return value


def split_chunk(held: str, chunk: str) -> tuple[str, str]:
    """What of ``held + chunk`` can be sent now, and a high surrogate held for the next chunk."""
    text = held + chunk
    if text and ord(text[-1]) in _HIGH:
        return clean_text(text[:-1]), text[-1]
    return clean_text(text), ""


def is_encodable(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (it holds no surrogate code point)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
