"""The service's programs, built once at start-up and shared by every request."""

from dataclasses import dataclass

import dspy

from .runtime.lm import LMConfig, build_lm, lm_configured
from .runtime.program import Listen, ServedProgram
from .runtime.tools import ToolArg, spec_tool
from .settings import Settings
from .signatures import (
    AgentSignature,
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

    agent: ServedProgram


def build_programs(settings: Settings, lm: dspy.BaseLM | None = None) -> Programs:
    """Build every program; ``lm``, when given, replaces every program's LM."""
    service_overrides = settings.lm_overrides()
    service_lm = lm or build_lm(SERVICE_LM, service_overrides)
    service_ready = lm is not None or lm_configured(SERVICE_LM, service_overrides)
    return Programs(
        agent=build_agent(service_lm, service_ready),
    )


def build_agent(lm: dspy.BaseLM, lm_ready: bool) -> ServedProgram:
    """The agent program: ReAct over AgentSignature."""
    tools = [
        spec_tool(
            search,
            name="search",
            desc="Search for information.",
            args={
                "query": ToolArg(str, "What to search for."),
            },
        ),
    ]
    module = dspy.ReAct(AgentSignature, tools=tools, max_iters=5)
    module.set_lm(lm)
    return ServedProgram(
        "agent",
        module,
        listen=[
            Listen("next_thought", "react", allow_reuse=True),
        ],
        status={
            "tool_start": "Using tool: {tool}",
            "tool_end": "Tool complete",
            "tool_error": "Tool {tool} failed ({error})",
            "lm_start": "Generating response...",
        },
        lm_configured=lm_ready,
    )
