"""Request and response bodies of every program, generated from its signature."""

from pydantic import BaseModel, Field

from .runtime.http import ErrorBody
from .runtime.inputs import Inputs
from .runtime.outputs import Outputs


class QaRequest(Inputs):
    """Inputs of the qa program."""

    question: str = Field(
        description="The question to answer.",
    )


class QaResponse(Outputs):
    """Outputs of the qa program."""

    reasoning: str = Field(
        description="The model's step-by-step reasoning before the outputs.",
    )
    answer: str = Field(
        description="A short answer, one or two sentences.",
    )


class QaBatchRequest(Inputs):
    """Many inputs of the qa program, run in one request."""

    inputs: list[QaRequest] = Field(min_length=1)


class QaBatchResult(BaseModel):
    """One item of a batch of the qa program: its outputs, or why it failed."""

    outputs: QaResponse | None = None
    error: ErrorBody | None = None


class QaBatchResponse(BaseModel):
    """Results of a batch of the qa program, in the order of its inputs."""

    results: list[QaBatchResult]
