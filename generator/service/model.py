"""The template-ready model: a validated spec with every reference resolved.

Templates see only this model (as plain data, through :mod:`dspy_forge.render.view`),
never raw YAML. :mod:`.build` makes it from a valid spec, checking what the shape
alone cannot.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dspy_forge.spec.contract import LMOverride, LMSpec
from dspy_forge.spec.server import ServerSpec
from dspy_forge.spec.types import FieldType


@dataclass(frozen=True)
class FieldModel:
    """A signature field or a tool argument.

    ``name`` is the field's public name (JSON key, OpenAPI); ``attr`` is its name
    inside the program (signature field, request model attribute), which differs
    only for an input named like a keyword DSPy's call path takes for itself.
    """

    name: str
    type: FieldType
    description: str
    attr: str


@dataclass(frozen=True)
class SignatureModel:
    """A signature class of the generated ``signatures.py``."""

    class_name: str
    instructions: str | None
    inputs: tuple[FieldModel, ...]
    outputs: tuple[FieldModel, ...]


@dataclass(frozen=True)
class ToolModel:
    """A tool: the stub the user fills in, and how programs import it."""

    name: str
    description: str
    args: tuple[FieldModel, ...]
    returns: FieldType
    module: str  # dotted, relative to the package
    function: str


@dataclass(frozen=True)
class LMModel:
    """A fully resolved LM configuration."""

    model: str
    api_key_env: str | None
    api_base: str | None
    temperature: float | None
    max_tokens: int | None
    cache: bool

    @classmethod
    def resolved(cls, base: LMSpec, override: LMOverride | None) -> LMModel:
        """The service's LM with a program's overrides applied (its unset keys inherit)."""
        values = base.model_dump()
        if override is not None:
            values |= {k: v for k, v in override.model_dump().items() if v is not None}
        return cls(**values)


@dataclass(frozen=True)
class ListenerModel:
    """A stream listener attached to a known predictor of the program."""

    field: str
    predictor: str
    allow_reuse: bool


@dataclass(frozen=True)
class ChatModel:
    """How the chat protocols reach a program (``service/chat.py`` resolves the defaults)."""

    message: str | None  # the str input of the last user message; None: a JSON object of inputs
    history: str | None  # the History input of the earlier messages
    content: str | None  # the str output that is the reply; None: the outputs as JSON
    reasoning: str | None  # the output streamed as reasoning (ChainOfThought, ReAct)


@dataclass(frozen=True)
class CustomModel:
    """A user-written module class: the stub the user fills in, and how programs import it."""

    module: str  # dotted, relative to the package: "modules.rag"
    class_name: str


@dataclass(frozen=True)
class BestOfModel:
    """A BestOfN program's attempts: the module tried, how often, and the user's reward."""

    module: str  # Predict | ChainOfThought, over the program's signature
    attempts: int
    reward: str  # a function in the package's rewards.py
    threshold: float


@dataclass(frozen=True)
class MetricModel:
    """How eval scores an example: a built-in on an output field, or a user function."""

    name: str | None  # exact_match | f1
    field: str | None
    function: str | None  # in the package's metrics.py


@dataclass(frozen=True)
class EvalModel:
    """A program's evaluation: its examples (shipped in the project), metric and threshold."""

    examples_file: str  # path inside the package
    count: int
    metric: MetricModel
    threshold: float | None
    train_file: str | None = None  # what optimize learns from, inside the package
    train_count: int = 0


@dataclass(frozen=True)
class ProgramModel:
    """A served program with everything its route, factory and tests need."""

    name: str
    class_prefix: str
    module: str
    description: str
    signature: SignatureModel
    tools: tuple[ToolModel, ...]
    max_iters: int | None
    lm: LMModel | None  # None: the service's LM
    listeners: tuple[ListenerModel, ...]
    status: tuple[tuple[str, str | None], ...]  # (hook, template) for every hook
    status_modules: str  # "program" (its own module only) or "all"
    state_file: str | None  # path inside the generated project
    extra_outputs: tuple[FieldModel, ...]  # fields the module adds, e.g. reasoning
    chat: ChatModel
    custom: CustomModel | None = None  # module: Custom, the class that impl names
    evaluation: EvalModel | None = None
    best_of: BestOfModel | None = None  # module: BestOfN, what it tries and how it scores


@dataclass(frozen=True)
class ServiceModel:
    """The whole generated service."""

    name: str
    package: str
    title: str
    description: str
    version: str
    lm: LMModel
    signatures: tuple[SignatureModel, ...]
    tools: tuple[ToolModel, ...]
    programs: tuple[ProgramModel, ...]
    server: ServerSpec  # defaults of the generated settings, already validated
    state_sources: tuple[tuple[str, str], ...]  # (absolute source, project path)
    example_sets: tuple[tuple[str, str], ...] = ()  # (package path, JSONL text of the rows)

    def to_data(self) -> dict[str, Any]:
        """Plain, JSON-ready data for the templates and Copier's answers file."""
        data = asdict(self)
        data.pop("state_sources")
        data.pop("example_sets")
        data["server"] = self.server.model_dump(mode="json")
        return data
