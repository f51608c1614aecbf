"""How the chat protocols (OpenAI Chat Completions, the AI SDK) reach each program.

Resolved from the spec's ``chat`` by dspy-forge: the input that receives the
last user message, the ``History`` input of the earlier ones, and the output
that is the reply's text (see the README's *Client protocols*).
"""

from .programs import Programs
from .runtime.protocols.base import ChatProgram
from .schemas import (
    GlossaryRequest,
    GlossaryResponse,
    HeadlineRequest,
    HeadlineResponse,
    ProfileRequest,
    ProfileResponse,
    SentimentRequest,
    SentimentResponse,
    TranslateRequest,
    TranslateResponse,
)


def chat_programs(programs: Programs) -> dict[str, ChatProgram]:
    """Every program as the chat protocols reach it, by name (the OpenAI ``model``)."""
    return {
        "profile": ChatProgram(
            programs.profile,
            ProfileRequest,
            ProfileResponse,
            message="text",
            history=None,
            content="summary",
            reasoning="reasoning",
        ),
        "translate": ChatProgram(
            programs.translate,
            TranslateRequest,
            TranslateResponse,
            message="text",
            history=None,
            content="translation",
            reasoning=None,
        ),
        "sentiment": ChatProgram(
            programs.sentiment,
            SentimentRequest,
            SentimentResponse,
            message="text",
            history=None,
            content=None,
            reasoning=None,
        ),
        "headline": ChatProgram(
            programs.headline,
            HeadlineRequest,
            HeadlineResponse,
            message="text",
            history=None,
            content="headline",
            reasoning="reasoning",
        ),
        "glossary": ChatProgram(
            programs.glossary,
            GlossaryRequest,
            GlossaryResponse,
            message="question",
            history=None,
            content="answer",
            reasoning="reasoning",
        ),
    }
