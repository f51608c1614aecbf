"""The service's programs, built once at start-up and shared by every request."""

from dataclasses import dataclass

import dspy

from .runtime.lm import LMConfig, build_lm, lm_configured
from .runtime.program import Listen, ServedProgram
from .settings import Settings
from .signatures import (
    AnswerQuestion,
)

SERVICE_LM = LMConfig(
    model="openai/gpt-4o-mini",
    api_key_env="OPENAI_API_KEY",
    cache=False,
)


@dataclass(frozen=True)
class Programs:
    """Every program of the service."""

    qa: ServedProgram


def build_programs(settings: Settings, lm: dspy.BaseLM | None = None) -> Programs:
    """Build every program; ``lm``, when given, replaces every program's LM."""
    service_overrides = settings.lm_overrides()
    service_lm = lm or build_lm(SERVICE_LM, service_overrides)
    service_ready = lm is not None or lm_configured(SERVICE_LM, service_overrides)
    return Programs(
        qa=build_qa(service_lm, service_ready),
    )


def build_qa(lm: dspy.BaseLM, lm_ready: bool) -> ServedProgram:
    """The qa program: ChainOfThought over AnswerQuestion."""
    module = dspy.ChainOfThought(AnswerQuestion)
    module.set_lm(lm)
    return ServedProgram(
        "qa",
        module,
        listen=[
            Listen("answer", "predict", allow_reuse=False),
        ],
        status={
            "lm_start": "Thinking...",
        },
        lm_configured=lm_ready,
    )
