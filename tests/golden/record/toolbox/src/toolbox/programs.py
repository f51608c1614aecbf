"""The service's programs, built once at start-up and shared by every request."""

from dataclasses import dataclass

import dspy

from . import rewards
from .runtime.best_of_n import BestOfN
from .runtime.lm import LMConfig, build_lm, lm_configured
from .runtime.program import Listen, ServedProgram
from .runtime.tools import ToolArg, spec_tool
from .settings import Settings
from .signatures import (
    GlossarySignature,
    HeadlineSignature,
    Profile,
    SentimentSignature,
    Translate,
)
from .tools.glossary import lookup, today

SERVICE_LM = LMConfig(
    model="openai/gpt-4o-mini",
    api_key_env="OPENAI_API_KEY",
    temperature=0.2,
    max_tokens=2000,
    cache=False,
)
TRANSLATE_LM = LMConfig(
    model="openai/gpt-4o",
    api_key_env="OPENAI_API_KEY",
    temperature=0.0,
    max_tokens=2000,
    cache=False,
)


@dataclass(frozen=True)
class Programs:
    """Every program of the service."""

    profile: ServedProgram
    translate: ServedProgram
    sentiment: ServedProgram
    headline: ServedProgram
    glossary: ServedProgram


def build_programs(settings: Settings, lm: dspy.BaseLM | None = None) -> Programs:
    """Build every program; ``lm``, when given, replaces every program's LM."""
    service_overrides = settings.lm_overrides()
    service_lm = lm or build_lm(SERVICE_LM, service_overrides)
    service_ready = lm is not None or lm_configured(SERVICE_LM, service_overrides)
    translate_overrides = settings.lm_overrides("translate_lm")
    return Programs(
        profile=build_profile(service_lm, service_ready),
        translate=build_translate(
            lm or build_lm(TRANSLATE_LM, translate_overrides),
            lm is not None
            or lm_configured(
                TRANSLATE_LM,
                translate_overrides,
                setting="TRANSLATE_LM",
            ),
        ),
        sentiment=build_sentiment(service_lm, service_ready),
        headline=build_headline(service_lm, service_ready),
        glossary=build_glossary(service_lm, service_ready),
    )


def build_profile(lm: dspy.BaseLM, lm_ready: bool) -> ServedProgram:
    """The profile program: ChainOfThought over Profile."""
    module = dspy.ChainOfThought(Profile)
    module.set_lm(lm)
    return ServedProgram(
        "profile",
        module,
        listen=[
            Listen("summary", "predict", allow_reuse=False),
            Listen("reasoning", "predict", allow_reuse=False),
        ],
        status={
            "module_start": "Profiling with {module}...",
            "module_end": "Done.",
        },
        lm_configured=lm_ready,
    )


def build_translate(lm: dspy.BaseLM, lm_ready: bool) -> ServedProgram:
    """The translate program: Predict over Translate."""
    module = dspy.Predict(Translate)
    module.set_lm(lm)
    return ServedProgram(
        "translate",
        module,
        listen=[
            Listen("translation", "self", allow_reuse=False),
        ],
        lm_configured=lm_ready,
    )


def build_sentiment(lm: dspy.BaseLM, lm_ready: bool) -> ServedProgram:
    """The sentiment program: Predict over SentimentSignature."""
    module = dspy.Predict(SentimentSignature)
    module.set_lm(lm)
    return ServedProgram(
        "sentiment",
        module,
        listen=[],
        lm_configured=lm_ready,
    )


def build_headline(lm: dspy.BaseLM, lm_ready: bool) -> ServedProgram:
    """The headline program: BestOfN over HeadlineSignature."""
    module = BestOfN(
        dspy.ChainOfThought(HeadlineSignature),
        attempts=3,
        reward=rewards.headline_reward,
        threshold=1.0,
    )
    module.set_lm(lm)
    return ServedProgram(
        "headline",
        module,
        listen=[
            Listen("headline", "module.predict", live=False),
        ],
        lm_configured=lm_ready,
    )


def build_glossary(lm: dspy.BaseLM, lm_ready: bool) -> ServedProgram:
    """The glossary program: ReAct over GlossarySignature."""
    tools = [
        spec_tool(
            lookup,
            name="lookup",
            desc="Look up a term in the glossary.",
            args={
                "term": ToolArg(str, "The term."),
                "limit": ToolArg(int, "Most entries."),
            },
        ),
        spec_tool(
            today,
            name="today",
            desc="Today's date, ISO 8601.",
            args={},
        ),
    ]
    module = dspy.ReAct(GlossarySignature, tools=tools, max_iters=4)
    module.set_lm(lm)
    return ServedProgram(
        "glossary",
        module,
        listen=[
            Listen("answer", "extract.predict", allow_reuse=False),
            Listen("next_thought", "react", allow_reuse=True),
        ],
        status={
            "tool_start": "Calling {tool} with {args}",
            "tool_end": "{tool} returned {output}",
            "lm_start": "Asking {model}...",
            "lm_end": "{model} answered.",
        },
        lm_configured=lm_ready,
    )
