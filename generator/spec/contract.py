"""The YAML contract (spec version 1): its shape, checked by pydantic.

This layer checks only what each key may hold. Cross-references (a program's
signature exists, a listener names a real output field) are resolved by
:mod:`dspy_forge.service.model`, which builds the template-ready model from this one.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    field_validator,
)
from pydantic_core import PydanticCustomError

from .base import Identifier, SpecModel, matching
from .program_parts import BestOfSpec, ChatSpec, Example, MetricSpec
from .server import ServerSpec

SPEC_VERSION = 1

# The service name: a distribution name that also gives the package name in snake case.
ServiceName = matching(
    r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$",
    "a lower-case name such as 'my-service': letters and digits, words joined by single '-' or '_'",
    64,
)
# One line: a title also becomes the project's summary in pyproject.toml, which refuses
# breaks, and the <title> of /docs, where FastAPI writes it without escaping (so no < >).
OneLine = matching(
    r"^[^\n\r\x85\u2028\u2029<>]*$", "one line of text, without line breaks, '<' or '>'", 500
)
LongText = Annotated[str, StringConstraints(max_length=20_000)]
StatusTemplate = Annotated[str, StringConstraints(min_length=1, max_length=500)]
# Every string slot has a length bound, short for names and references, long for prose
# (tests/unit/test_spec_strings.py walks the model to hold every new slot to it).
Version = matching(
    r"^[0-9]+(\.[0-9]+){0,2}([ab]|rc)?[0-9]*$", "a version such as '1.2.0' or '1.0rc1'", 64
)
# DSPy refuses a provider prefix with no model id after it ("openai/").
ModelName = matching(
    r"^(?:[^/]+|[^/]*/.+)$",
    "a LiteLLM model string such as 'openai/gpt-4o-mini' (a model id after the provider)",
    200,
)
EnvName = matching(
    r"^[A-Z_][A-Z0-9_]*$", "an environment variable name such as 'OPENAI_API_KEY'", 128
)
BaseUrl = matching(r"^https?://\S+$", "an http:// or https:// URL without spaces", 2_000)
TypeText = Annotated[str, StringConstraints(min_length=1, max_length=500)]
ImplRef = matching(
    r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$",
    "'module:function' within the package, such as 'tools.search:search'",
    200,
)
# A user-written module class: 'modules.<module>:<Class>' (build.py checks the folder).
ModuleRef = matching(
    r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*:[A-Z][A-Za-z0-9_]*$",
    "'module:Class' within the package, such as 'modules.rag:RAG'",
    200,
)
PredictorName = matching(
    r"^[A-Za-z_][A-Za-z0-9_.]*$", "a predictor name such as 'react' or 'extract.predict'", 200
)


class ServiceSpec(SpecModel):
    """The service: its names and the version of the generated project."""

    name: ServiceName = Field(
        description="Distribution name of the generated project, e.g. 'research-agent'; "
        "its package is the snake_case form ('research_agent')."
    )
    title: OneLine | None = Field(None, description="Human title; defaults to the name.")
    description: LongText = Field("", description="What the service does (README, OpenAPI).")
    version: Version = Field("0.1.0", description="Version of the generated project (PEP 440).")


class LMSpec(SpecModel):
    """A language model as LiteLLM names it, and how to call it."""

    model: ModelName = Field(description="LiteLLM model string, e.g. 'openai/gpt-4o-mini'.")
    api_key_env: EnvName | None = Field(
        None, description="Environment variable that holds the API key, e.g. OPENAI_API_KEY."
    )
    api_base: BaseUrl | None = Field(None, description="Base URL of an OpenAI-compatible endpoint.")
    temperature: Annotated[float, Field(ge=0, le=2)] | None = Field(None, description="Sampling.")
    max_tokens: Annotated[int, Field(gt=0, le=1_000_000)] | None = Field(
        None, description="Most tokens per completion."
    )
    cache: bool = Field(
        False, description="DSPy's response cache. A cached answer streams as one chunk."
    )


class LMOverride(SpecModel):
    """Per-program changes to the service's LM; unset keys keep the service's value."""

    model: ModelName | None = Field(None, description="Replaces lm.model.")
    api_key_env: EnvName | None = Field(None, description="Replaces lm.api_key_env.")
    api_base: BaseUrl | None = Field(None, description="Replaces lm.api_base.")
    temperature: Annotated[float, Field(ge=0, le=2)] | None = Field(
        None, description="Replaces lm.temperature."
    )
    max_tokens: Annotated[int, Field(gt=0, le=1_000_000)] | None = Field(
        None, description="Replaces lm.max_tokens."
    )
    cache: bool | None = Field(None, description="Replaces lm.cache.")


class FieldSpec(SpecModel):
    """One input or output field of a signature."""

    type: TypeText = Field(
        "str",
        description="str, int, float, bool, list[T], dict[str, T], Literal[...], T | None, "
        "Image or History.",
    )
    description: LongText = Field("", description="Shown to the LM and in the OpenAPI schema.")


def _field_map(value: object) -> object:
    """Accept the shorthand ``name: type`` for a field with no description."""
    if isinstance(value, dict):
        return {k: {"type": v} if isinstance(v, str) else v for k, v in value.items()}
    return value


FieldMap = dict[Identifier, FieldSpec]
# What a field map accepts, for the JSON Schema: the long form or the ``name: type`` shorthand.
FieldMapInput = dict[Identifier, FieldSpec | TypeText]


class SignatureSpec(SpecModel):
    """A named DSPy signature: instructions and ordered, typed fields."""

    instructions: LongText | None = Field(
        None, description="The task, as the signature's docstring; DSPy's default when unset."
    )
    inputs: FieldMap = Field(description="Input fields, in order.")
    outputs: FieldMap = Field(description="Output fields, in order.")

    _shorthand = field_validator(
        "inputs", "outputs", mode="before", json_schema_input_type=FieldMapInput
    )(_field_map)


class ToolSpec(SpecModel):
    """A tool an agent may call; the generated project holds a typed stub to fill in."""

    description: LongText = Field(description="What the tool does; the LM reads it.")
    args: FieldMap = Field(default_factory=dict, description="Typed arguments, in order.")
    returns: TypeText = Field("str", description="Return type.")
    impl: ImplRef | None = Field(
        None,
        description="Where the implementation lives in the generated package, as "
        "'module:function' (e.g. 'tools.search:search'); defaults to 'tools.<name>:<name>'.",
    )

    _shorthand = field_validator("args", mode="before", json_schema_input_type=FieldMapInput)(
        _field_map
    )


class ListenerSpec(SpecModel):
    """An output field streamed token by token."""

    field: Identifier = Field(description="Output field to stream (a str field).")
    predictor: PredictorName | None = Field(
        None,
        description="Predictor that produces the field, as named_predictors() names it, when "
        "several do; required for a Custom module (checked when the service starts).",
    )
    allow_reuse: bool = Field(
        False, description="Stream the field every time the predictor runs (e.g. in a loop)."
    )


# The status hooks: when each fires, and the placeholders its template may name. The
# one home of the hooks: HOOKS, StatusSpec, the model's template checks and the docs
# are made from it (tests/unit/test_one_home.py fails on a second list of them).
STATUS_HOOKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "tool_start": ("A tool is called.", ("program", "tool", "args")),
    "tool_end": ("A tool returned.", ("program", "tool", "output")),
    "tool_error": (
        "A tool raised, instead of tool_end; the traceback is logged. "
        "{error} is the exception's type.",
        ("program", "tool", "error"),
    ),
    "lm_start": ("An LM call started, whether a listener watches it or not.", ("program", "model")),
    "lm_end": ("An LM call answered.", ("program", "model")),
    "lm_error": (
        "An LM call failed, instead of lm_end. {error} is a code such as upstream_auth.",
        ("program", "model", "error"),
    ),
    "module_start": ("The program's own module started.", ("program", "module")),
    "module_end": ("The program's own module ended.", ("program", "module")),
}
HOOKS: tuple[str, ...] = tuple(STATUS_HOOKS)
PLACEHOLDERS: dict[str, frozenset[str]] = {
    hook: frozenset(names) for hook, (_, names) in STATUS_HOOKS.items()
}


def _placeholders(names: tuple[str, ...]) -> str:
    return " ".join(f"{{{name}}}" for name in names)


StatusSpec = create_model(
    "StatusSpec",
    __base__=SpecModel,
    __doc__="What to say at each hook; a missing or null hook stays silent.",
    **{
        hook: (
            StatusTemplate | None,
            Field(None, description=f"{when} Placeholders: {_placeholders(names)}."),
        )
        for hook, (when, names) in STATUS_HOOKS.items()
    },
)


ModuleName = Literal["Predict", "ChainOfThought", "ReAct", "BestOfN", "Custom"]


class ProgramSpec(SpecModel):
    """A served DSPy program: its module, signature, streaming and status messages."""

    module: ModuleName = Field(
        description="The DSPy module that runs the signature; BestOfN: the best of several "
        "attempts of a Predict or ChainOfThought, as best_of says; Custom: your own "
        "dspy.Module subclass, named by impl (the generated project holds a stub to fill in)."
    )
    best_of: BestOfSpec | None = Field(
        None, description="BestOfN only (and required by it): what to try, how often, scored how."
    )
    impl: ModuleRef | None = Field(
        None,
        description="Custom only: where your module class lives in the generated package, as "
        "'modules.<module>:<Class>' (e.g. 'modules.rag:RAG'). Its constructor receives the "
        "signature and the program's tools.",
    )
    signature: Annotated[str, StringConstraints(min_length=1, max_length=2_000)] = Field(
        description="A signature name from `signatures`, or an inline string signature "
        "such as 'question -> answer' or 'question: str -> score: float'."
    )
    description: LongText = Field("", description="What the program does (OpenAPI, README).")
    tools: list[Identifier] = Field(
        default_factory=list, description="Tools (ReAct, and Custom: given to its constructor)."
    )
    max_iters: Annotated[int, Field(gt=0, le=100)] | None = Field(
        None, description="Most tool steps (ReAct only; DSPy's default is 20)."
    )
    lm: LMOverride | None = Field(None, description="Overrides of the service's LM.")
    stream: list[ListenerSpec] = Field(
        default_factory=list, description="Output fields streamed token by token."
    )
    status: StatusSpec = Field(default_factory=StatusSpec, description="Status messages.")
    chat: ChatSpec = Field(
        default_factory=ChatSpec, description="How chat protocols map messages onto the program."
    )
    status_modules: Literal["program", "all"] = Field(
        "program",
        description="Whose start and end the module hooks report: the program's own module "
        "(default), or every module it is built of too (ChainOfThought's Predict, ...).",
    )
    state: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = Field(
        None,
        description="JSON file saved by program.save(), as a relative path to a file in the "
        "spec's folder or below it (not through a symlink out of it); copied into the project "
        "and loaded at start-up.",
    )
    examples: (
        list[Example] | Annotated[str, StringConstraints(min_length=1, max_length=500)] | None
    ) = Field(
        None,
        description="Examples for `eval`: a list of objects holding the signature's input "
        "fields and expected output fields, or a relative path to a JSONL or CSV file of them "
        "(same path rules as `state`); shipped in the project.",
    )
    train: (
        list[Example] | Annotated[str, StringConstraints(min_length=1, max_length=500)] | None
    ) = Field(
        None,
        description="Examples `optimize` learns from (the same forms as `examples`); "
        "`examples` stay the held-out set that eval and optimize's before/after score.",
    )
    metric: MetricSpec | None = Field(None, description="How eval scores each example.")
    threshold: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None, description="Least mean score (0..1) under which eval exits non-zero."
    )


class Spec(SpecModel):
    """A dspy-forge spec: one service of DSPy programs."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        title="dspy-forge spec",
        json_schema_extra={"$id": "https://dspy-forge.dev/schema/spec-v1.json"},
    )

    version: Literal[1] = Field(description="Spec format version.")
    service: ServiceSpec
    lm: LMSpec
    signatures: dict[Identifier, SignatureSpec] = Field(default_factory=dict)
    tools: dict[Identifier, ToolSpec] = Field(default_factory=dict)
    programs: dict[Identifier, ProgramSpec] = Field(min_length=1)
    server: ServerSpec = Field(
        default_factory=ServerSpec, description="Defaults of the service's settings."
    )

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_a_number(cls, value: object) -> object:
        # Literal[1] alone accepts True, which equals 1 in Python.
        if isinstance(value, bool):
            raise PydanticCustomError(
                "literal_error", "Input should be {expected}", {"expected": str(SPEC_VERSION)}
            )
        return value


def snake_case(name: str) -> str:
    """The package form of a service name: 'research-agent' -> 'research_agent'."""
    return re.sub(r"[-]+", "_", name).lower()
