"""Request and response bodies of every program, generated from its signature."""

from pydantic import BaseModel, Field

from .runtime.http import ErrorBody
from .runtime.inputs import Inputs
from .runtime.outputs import Outputs


class CitedRequest(Inputs):
    """Inputs of the cited program."""

    question: str = Field(
        description="The question to answer.",
    )


class CitedResponse(Outputs):
    """Outputs of the cited program."""

    answer: str = Field(
        description="The answer, with a bracketed citation after each claim.",
    )
    citations: list[int] = Field(
        description="The numbers of the passages the answer cites.",
    )


class CitedBatchRequest(Inputs):
    """Many inputs of the cited program, run in one request."""

    inputs: list[CitedRequest] = Field(min_length=1)


class CitedBatchResult(BaseModel):
    """One item of a batch of the cited program: its outputs, or why it failed."""

    outputs: CitedResponse | None = None
    error: ErrorBody | None = None


class CitedBatchResponse(BaseModel):
    """Results of a batch of the cited program, in the order of its inputs."""

    results: list[CitedBatchResult]
