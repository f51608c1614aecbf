"""Request and response bodies of every program, generated from its signature."""

from typing import Literal

from pydantic import BaseModel, Field

from .runtime.http import ErrorBody
from .runtime.inputs import Inputs
from .runtime.outputs import Outputs


class ProfileRequest(Inputs):
    """Inputs of the profile program."""

    text: str = Field(
        description="The text to profile.",
    )
    language: Literal["en", "de", "fr"] | None = Field(
        default=None,
        description="Its language, if known.",
    )
    hints: list[str] = Field(
        description="Words that matter.",
    )
    weights: dict[str, float] = Field(
        description="Topic weights.",
    )
    max_items: int = Field(
        description="Most items per list.",
    )
    strict: bool = Field(
        description="Refuse to guess.",
    )


class ProfileResponse(Outputs):
    """Outputs of the profile program."""

    reasoning: str = Field(
        description="The model's step-by-step reasoning before the outputs.",
    )
    summary: str = Field(
        description="One sentence.",
    )
    category: Literal["news", "opinion", "other"] = Field(
        description="The kind of text.",
    )
    score: float = Field(
        description="Quality from 0 to 1.",
    )
    word_count: int = Field(
        description="Number of words.",
    )
    is_question: bool = Field(
        description="Whether it asks something.",
    )
    entities: list[str] = Field(
        description="Named entities.",
    )
    counts: dict[str, int] = Field(
        description="Mentions per entity.",
    )
    nested: list[dict[str, list[int]]] = Field(
        description="Deeply nested numbers.",
    )
    note: str | None = Field(
        default=None,
        description="Anything else worth saying.",
    )


class ProfileBatchRequest(Inputs):
    """Many inputs of the profile program, run in one request."""

    inputs: list[ProfileRequest] = Field(min_length=1)


class ProfileBatchResult(BaseModel):
    """One item of a batch of the profile program: its outputs, or why it failed."""

    outputs: ProfileResponse | None = None
    error: ErrorBody | None = None


class ProfileBatchResponse(BaseModel):
    """Results of a batch of the profile program, in the order of its inputs."""

    results: list[ProfileBatchResult]


class TranslateRequest(Inputs):
    """Inputs of the translate program."""

    text: str = Field(
        description="",
    )
    target: str = Field(
        description="",
    )


class TranslateResponse(Outputs):
    """Outputs of the translate program."""

    translation: str = Field(
        description="",
    )


class TranslateBatchRequest(Inputs):
    """Many inputs of the translate program, run in one request."""

    inputs: list[TranslateRequest] = Field(min_length=1)


class TranslateBatchResult(BaseModel):
    """One item of a batch of the translate program: its outputs, or why it failed."""

    outputs: TranslateResponse | None = None
    error: ErrorBody | None = None


class TranslateBatchResponse(BaseModel):
    """Results of a batch of the translate program, in the order of its inputs."""

    results: list[TranslateBatchResult]


class SentimentRequest(Inputs):
    """Inputs of the sentiment program."""

    text: str = Field(
        description="",
    )


class SentimentResponse(Outputs):
    """Outputs of the sentiment program."""

    sentiment: Literal["positive", "negative", "neutral"] = Field(
        description="",
    )
    confidence: float = Field(
        description="",
    )


class SentimentBatchRequest(Inputs):
    """Many inputs of the sentiment program, run in one request."""

    inputs: list[SentimentRequest] = Field(min_length=1)


class SentimentBatchResult(BaseModel):
    """One item of a batch of the sentiment program: its outputs, or why it failed."""

    outputs: SentimentResponse | None = None
    error: ErrorBody | None = None


class SentimentBatchResponse(BaseModel):
    """Results of a batch of the sentiment program, in the order of its inputs."""

    results: list[SentimentBatchResult]


class HeadlineRequest(Inputs):
    """Inputs of the headline program."""

    text: str = Field(
        description="",
    )


class HeadlineResponse(Outputs):
    """Outputs of the headline program."""

    reasoning: str = Field(
        description="The model's step-by-step reasoning before the outputs.",
    )
    headline: str = Field(
        description="",
    )


class HeadlineBatchRequest(Inputs):
    """Many inputs of the headline program, run in one request."""

    inputs: list[HeadlineRequest] = Field(min_length=1)


class HeadlineBatchResult(BaseModel):
    """One item of a batch of the headline program: its outputs, or why it failed."""

    outputs: HeadlineResponse | None = None
    error: ErrorBody | None = None


class HeadlineBatchResponse(BaseModel):
    """Results of a batch of the headline program, in the order of its inputs."""

    results: list[HeadlineBatchResult]


class GlossaryRequest(Inputs):
    """Inputs of the glossary program."""

    question: str = Field(
        description="",
    )


class GlossaryResponse(Outputs):
    """Outputs of the glossary program."""

    reasoning: str = Field(
        description="The model's step-by-step reasoning before the outputs.",
    )
    answer: str = Field(
        description="",
    )
    sources: list[str] = Field(
        description="",
    )


class GlossaryBatchRequest(Inputs):
    """Many inputs of the glossary program, run in one request."""

    inputs: list[GlossaryRequest] = Field(min_length=1)


class GlossaryBatchResult(BaseModel):
    """One item of a batch of the glossary program: its outputs, or why it failed."""

    outputs: GlossaryResponse | None = None
    error: ErrorBody | None = None


class GlossaryBatchResponse(BaseModel):
    """Results of a batch of the glossary program, in the order of its inputs."""

    results: list[GlossaryBatchResult]
