"""DSPy signatures of the service's programs, generated from the spec."""

from typing import Literal

import dspy


class Profile(dspy.Signature):
    """Profile the text: classify it, score it and pull out what it mentions.
    Be precise; leave a field empty rather than guess.
    """

    text: str = dspy.InputField(
        desc="The text to profile.",
    )
    language: Literal["en", "de", "fr"] | None = dspy.InputField(
        desc="Its language, if known.",
    )
    hints: list[str] = dspy.InputField(
        desc="Words that matter.",
    )
    weights: dict[str, float] = dspy.InputField(
        desc="Topic weights.",
    )
    max_items: int = dspy.InputField(
        desc="Most items per list.",
    )
    strict: bool = dspy.InputField(
        desc="Refuse to guess.",
    )
    summary: str = dspy.OutputField(
        desc="One sentence.",
    )
    category: Literal["news", "opinion", "other"] = dspy.OutputField(
        desc="The kind of text.",
    )
    score: float = dspy.OutputField(
        desc="Quality from 0 to 1.",
    )
    word_count: int = dspy.OutputField(
        desc="Number of words.",
    )
    is_question: bool = dspy.OutputField(
        desc="Whether it asks something.",
    )
    entities: list[str] = dspy.OutputField(
        desc="Named entities.",
    )
    counts: dict[str, int] = dspy.OutputField(
        desc="Mentions per entity.",
    )
    nested: list[dict[str, list[int]]] = dspy.OutputField(
        desc="Deeply nested numbers.",
    )
    note: str | None = dspy.OutputField(
        desc="Anything else worth saying.",
    )


class Translate(dspy.Signature):
    text: str = dspy.InputField()
    target: str = dspy.InputField()
    translation: str = dspy.OutputField()


class SentimentSignature(dspy.Signature):
    text: str = dspy.InputField()
    sentiment: Literal["positive", "negative", "neutral"] = dspy.OutputField()
    confidence: float = dspy.OutputField()


class HeadlineSignature(dspy.Signature):
    text: str = dspy.InputField()
    headline: str = dspy.OutputField()


class GlossarySignature(dspy.Signature):
    question: str = dspy.InputField()
    answer: str = dspy.OutputField()
    sources: list[str] = dspy.OutputField()
