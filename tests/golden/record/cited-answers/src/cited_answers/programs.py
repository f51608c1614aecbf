"""The service's programs, built once at start-up and shared by every request."""

from dataclasses import dataclass

import dspy

from .modules.cited import RetrieveThenAnswer
from .runtime.lm import LMConfig, build_lm, lm_configured
from .runtime.program import Listen, ServedProgram
from .runtime.tools import ToolArg, spec_tool
from .settings import Settings
from .signatures import (
    AnswerWithCitations,
)
from .tools.search import search

SERVICE_LM = LMConfig(
    model="openai/gpt-4o-mini",
    api_key_env="OPENAI_API_KEY",
    cache=False,
)


@dataclass(frozen=True)
class Programs:
    """Every program of the service."""

    cited: ServedProgram


def build_programs(settings: Settings, lm: dspy.BaseLM | None = None) -> Programs:
    """Build every program; ``lm``, when given, replaces every program's LM."""
    service_overrides = settings.lm_overrides()
    service_lm = lm or build_lm(SERVICE_LM, service_overrides)
    service_ready = lm is not None or lm_configured(SERVICE_LM, service_overrides)
    return Programs(
        cited=build_cited(service_lm, service_ready),
    )


def build_cited(lm: dspy.BaseLM, lm_ready: bool) -> ServedProgram:
    """The cited program: Custom over AnswerWithCitations."""
    tools = [
        spec_tool(
            search,
            name="search",
            desc="Search the knowledge base; returns the best passages, most relevant first.",
            args={
                "query": ToolArg(str, "What to look for."),
            },
        ),
    ]
    module = RetrieveThenAnswer(AnswerWithCitations, tools=tools)
    module.set_lm(lm)
    return ServedProgram(
        "cited",
        module,
        listen=[
            Listen("answer", "answer.predict", allow_reuse=False),
        ],
        status={
            "tool_start": "Searching the knowledge base for {args}",
            "tool_end": "Found passages",
            "lm_start": "Writing the answer...",
        },
        lm_configured=lm_ready,
    )
