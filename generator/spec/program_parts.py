"""The parts of a program's spec besides its module: BestOfN, the metric, the chat mapping.

Kept apart from :mod:`.contract` so that each module stays small; the contract
imports them into ``ProgramSpec``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from .base import Identifier, SpecModel, matching

MetricRef = matching(
    r"^metrics:[A-Za-z_][A-Za-z0-9_]*$", "'metrics:<function>', such as 'metrics:score'", 200
)
RewardRef = matching(
    r"^rewards:[A-Za-z_][A-Za-z0-9_]*$", "'rewards:<function>', such as 'rewards:concise'", 200
)


class BestOfSpec(SpecModel):
    """BestOfN: run a module up to N times and keep the attempt your reward scores best."""

    module: Literal["Predict", "ChainOfThought"] = Field(
        description="The module tried on each attempt, built over the program's signature."
    )
    attempts: Annotated[int, Field(ge=2, le=20)] = Field(
        description="Most attempts (DSPy's N), each one LM call at temperature 1.0."
    )
    reward: RewardRef = Field(
        description="Your reward, 'rewards:<function>' in the generated package's rewards.py "
        "(written once as a stub, then yours): f(args: dict, prediction) -> float."
    )
    threshold: Annotated[float, Field(allow_inf_nan=False)] = Field(
        description="Stop at the first attempt whose reward is at least this; when none "
        "reaches it, the attempt with the highest reward is the answer."
    )


class MetricSpec(SpecModel):
    """How eval scores one example: a built-in metric on an output field, or your function."""

    name: Literal["exact_match", "f1"] | None = Field(
        None, description="exact_match or f1: DSPy's em_score or f1_score on normalised text."
    )
    field: Identifier | None = Field(
        None, description="The output field a built-in metric compares with the example's."
    )
    function: MetricRef | None = Field(
        None,
        description="Your own metric, 'metrics:<function>' in the generated package's "
        "metrics.py (written once as a stub, then yours): f(example, prediction, trace=None) "
        "-> float or bool.",
    )


Example = dict[Identifier, Any]


class ChatSpec(SpecModel):
    """How the chat protocols (OpenAI Chat Completions, the AI SDK's useChat) reach a program."""

    message: Identifier | None = Field(
        None,
        description="The str input that receives the last user message (default: the first "
        "str input; with none, the message is a JSON object of the inputs).",
    )
    history: Identifier | Literal[False] | None = Field(
        None,
        description="The History input that receives the earlier messages (default: the first "
        "History input, if any; false: none).",
    )
    content: Identifier | None = Field(
        None,
        description="The str output that is the reply's text (default: the first streamed str "
        "output, else the first str output; with none, the reply is the outputs as JSON).",
    )
