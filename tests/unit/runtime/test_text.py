"""text.py: text from an LM or a client, made encodable (surrogate halves)."""

from __future__ import annotations

import json

from forge_service.runtime.text import clean_text, clean_value, is_encodable, split_chunk

HIGH, LOW = "\ud83d", "\ude00"  # the two halves of U+1F600
SMILE = "\U0001f600"


def test_clean_text_joins_a_surrogate_pair_into_its_character() -> None:
    assert clean_text(f"a{HIGH}{LOW}b") == f"a{SMILE}b"


def test_clean_text_replaces_lone_surrogates_with_u_fffd() -> None:
    assert clean_text(f"a{HIGH}b{LOW}") == "a\ufffdb\ufffd"


def test_clean_text_returns_encodable_text_unchanged() -> None:
    text = f"plain, accented é and {SMILE}"
    assert clean_text(text) is text


def test_clean_value_cleans_every_string_of_a_json_value_keys_included() -> None:
    value = {f"k{HIGH}": [f"{HIGH}{LOW}", 1, None, {"x": LOW}], "n": 2.5}
    cleaned = clean_value(value)
    assert cleaned == {"k\ufffd": [SMILE, 1, None, {"x": "\ufffd"}], "n": 2.5}
    json.dumps(cleaned, ensure_ascii=False).encode("utf-8")  # it encodes


def test_split_chunk_holds_a_trailing_high_surrogate_until_its_pair_arrives() -> None:
    sent, held = split_chunk("", f"ab{HIGH}")
    assert (sent, held) == ("ab", HIGH)
    sent, held = split_chunk(held, f"{LOW}c")
    assert (sent, held) == (f"{SMILE}c", "")


def test_split_chunk_sends_a_low_surrogate_without_its_pair_as_u_fffd() -> None:
    assert split_chunk("", f"{LOW}x") == ("\ufffdx", "")


def test_split_chunk_of_a_lone_high_surrogate_sends_nothing_yet() -> None:
    assert split_chunk("", HIGH) == ("", HIGH)


def test_is_encodable_is_false_only_for_text_with_a_surrogate() -> None:
    assert is_encodable("ascii")
    assert is_encodable(f"é {SMILE}")
    assert not is_encodable(f"x{HIGH}")
    assert not is_encodable(LOW)
