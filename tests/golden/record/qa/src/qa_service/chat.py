"""How the chat protocols (OpenAI Chat Completions, the AI SDK) reach each program.

Resolved from the spec's ``chat`` by dspy-forge: the input that receives the
last user message, the ``History`` input of the earlier ones, and the output
that is the reply's text (see the README's *Client protocols*).
"""

from .programs import Programs
from .runtime.protocols.base import ChatProgram
from .schemas import (
    QaRequest,
    QaResponse,
)


def chat_programs(programs: Programs) -> dict[str, ChatProgram]:
    """Every program as the chat protocols reach it, by name (the OpenAI ``model``)."""
    return {
        "qa": ChatProgram(
            programs.qa,
            QaRequest,
            QaResponse,
            message="question",
            history=None,
            content="answer",
            reasoning="reasoning",
        ),
    }
