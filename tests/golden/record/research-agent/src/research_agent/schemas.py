"""Request and response bodies of every program, generated from its signature."""

from pydantic import BaseModel, Field

from .runtime.http import ErrorBody
from .runtime.inputs import Inputs
from .runtime.outputs import Outputs


class AgentRequest(Inputs):
    """Inputs of the agent program."""

    question: str = Field(
        description="",
    )


class AgentResponse(Outputs):
    """Outputs of the agent program."""

    reasoning: str = Field(
        description="The model's step-by-step reasoning before the outputs.",
    )
    answer: str = Field(
        description="",
    )


class AgentBatchRequest(Inputs):
    """Many inputs of the agent program, run in one request."""

    inputs: list[AgentRequest] = Field(min_length=1)


class AgentBatchResult(BaseModel):
    """One item of a batch of the agent program: its outputs, or why it failed."""

    outputs: AgentResponse | None = None
    error: ErrorBody | None = None


class AgentBatchResponse(BaseModel):
    """Results of a batch of the agent program, in the order of its inputs."""

    results: list[AgentBatchResult]
