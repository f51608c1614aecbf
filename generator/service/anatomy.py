"""What the DSPy modules a spec can name are made of: predictors, their fields, names.

One home for these facts: the model builder (which predictors a listener may
name, which outputs a module adds, which field names cannot be used) and the
saved-state check (what DSPy saves per predictor) both read them here.
``tests/unit/test_one_home.py`` builds each module with DSPy and compares.
"""

from __future__ import annotations

from dspy_forge.service.model import FieldModel
from dspy_forge.spec.types import parse_type

# The outputs of ReAct's loop predictor, besides the trajectory it reads.
REACT_STEP = ("next_thought", "next_tool_name", "next_tool_args")
# A user-written module: the generator cannot know its predictors, the runtime can
# (``named_predictors()`` at start-up checks listeners and saved state against them).
CUSTOM = "Custom"
# The best of several attempts of an inner module (runtime/best_of_n.py in the project).
BEST_OF_N = "BestOfN"


def known(module: str) -> bool:
    """Whether the generator knows ``module``'s predictors (every module but Custom)."""
    return module != CUSTOM


def predictors(
    module: str,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    inner: str | None = None,
) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Each predictor of ``module`` by its ``named_predictors()`` name: (inputs, outputs).

    A bare Predict names itself ``self``; ChainOfThought adds ``reasoning``;
    ReAct loops with ``react`` over a ``trajectory``, then extracts the outputs
    with a ChainOfThought (``extract.predict``). A BestOfN's are those of the
    ``inner`` module it tries, under its attribute ``module`` (an inner Predict is
    ``module`` itself). A Custom module's are unknown here: none are listed.
    """
    if not known(module):
        return {}
    if module == BEST_OF_N:
        own = predictors(inner, inputs, outputs) if inner and inner != BEST_OF_N else {}
        return {("module" if name == "self" else f"module.{name}"): io for name, io in own.items()}
    if module == "Predict":
        return {"self": (inputs, outputs)}
    if module == "ChainOfThought":
        return {"predict": (inputs, ("reasoning", *outputs))}
    return {
        "react": ((*inputs, "trajectory"), REACT_STEP),
        "extract.predict": ((*inputs, "trajectory"), ("reasoning", *outputs)),
    }


def adds_reasoning(module: str, inner: str | None = None) -> bool:
    """Whether ``module`` (tried as ``inner`` by a BestOfN) adds a ``reasoning`` output."""
    return (inner if module == BEST_OF_N else module) in {"ChainOfThought", "ReAct"}


REASONING = FieldModel(
    name="reasoning",
    type=parse_type("str"),
    description="The model's step-by-step reasoning before the outputs.",
    attr="reasoning",
)


# Names a field may not take: they shadow attributes of pydantic models, DSPy
# signatures (and their metaclass) or predictions, which the generated code and DSPy
# rely on, or a name that field annotations in the generated class bodies read.
RESERVED_FIELDS = frozenset(
    {
        # pydantic.BaseModel (besides model_*)
        "construct",
        "copy",
        "dict",
        "from_orm",
        "json",
        "parse_file",
        "parse_obj",
        "parse_raw",
        "schema",
        "schema_json",
        "update_forward_refs",
        "validate",
        # dspy.Signature and its metaclass
        "append",
        "append_instructions",
        "delete",
        "dump_state",
        "equals",
        "fields",
        "input_fields",
        "insert",
        "instructions",
        "load_state",
        "output_fields",
        "prepend",
        "signature",
        "with_instructions",
        "with_updated_fields",
        # dspy.Prediction, and the generated Outputs base
        "completions",
        "from_completions",
        "from_prediction",
        "get",
        "get_lm_usage",
        "inputs",
        "items",
        "keys",
        "labels",
        "set_lm_usage",
        "toDict",
        "values",
        "with_inputs",
        "without",
        # ReAct's trajectory; names read by annotations in a class body
        "trajectory",
        "Field",
        "Literal",
        "bool",
        "dspy",
        "float",
        "int",
        "list",
        "str",
    }
)
