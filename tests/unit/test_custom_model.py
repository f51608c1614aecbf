"""module: Custom in the model: impl resolved to a class, listeners taken on the spec's word.

The generator cannot know a Custom module's predictors, so it keeps the
listener's ``predictor:`` as written (the service checks it at start-up) and
refuses only what it can know. The located errors of a misused Custom program
are pinned in tests/invalid/custom-module-misused.yaml.
"""

from __future__ import annotations

import pytest

from dspy_forge.render.view import render_data
from dspy_forge.service.model import CustomModel, ListenerModel
from dspy_forge.spec.errors import SpecInvalid
from dspy_forge.spec.loader import load_spec_text

SPEC = """\
version: 1
service: {name: demo}
lm: {model: openai/gpt-4o-mini}
tools:
  search: {description: Search., args: {query: str}}
programs:
  rag:
    module: Custom
    impl: modules.rag:RAG
    signature: "question -> answer"
    tools: [search]
    stream:
      - {field: query, predictor: retrieve.write_query}
      - {field: answer, predictor: draft}
      - {field: answer, predictor: answer.predict, allow_reuse: true}
  again:
    module: Custom
    impl: modules.rag:RAG
    signature: "question -> answer"
"""


def errors(text: str) -> list[tuple[str, str]]:
    with pytest.raises(SpecInvalid) as caught:
        load_spec_text(text)
    return [(".".join(map(str, e.path)), e.message) for e in caught.value.errors]


def test_a_custom_program_holds_its_class_and_its_listeners_as_written() -> None:
    model = load_spec_text(SPEC).model
    rag = model.programs[0]
    assert rag.custom == CustomModel("modules.rag", "RAG")
    assert rag.extra_outputs == ()  # the response has the signature's outputs only
    assert [t.name for t in rag.tools] == ["search"]
    assert rag.listeners == (
        ListenerModel("query", "retrieve.write_query", False),
        ListenerModel("answer", "draft", False),
        ListenerModel("answer", "answer.predict", True),
    )


def test_a_class_shared_by_programs_has_one_stub_and_one_import() -> None:
    data = render_data(load_spec_text(SPEC).model)
    assert data["custom_modules"] == [{"name": "rag", "classes": [{"class_name": "RAG"}]}]
    assert [p["custom"] for p in data["programs"]] == [{"module": "rag", "class_name": "RAG"}] * 2


def test_builtin_programs_have_no_custom_class() -> None:
    text = SPEC.replace("module: Custom\n    impl: modules.rag:RAG\n", "module: Predict\n")
    text = text.replace("    tools: [search]\n", "").split("    stream:")[0]
    model = load_spec_text(text + "  again:\n    module: Predict\n    signature: 'q -> a'\n").model
    assert {p.custom for p in model.programs} == {None}
    assert render_data(model)["custom_modules"] == []


@pytest.mark.parametrize(
    ("impl", "where", "message"),
    [
        ("modules.rag", "programs.rag.impl", "expected 'module:Class' within the package"),
        ("rag:RAG", "programs.rag.impl", "Custom modules live in the generated package's modules/"),
        ("modules.rag.deep:RAG", "programs.rag.impl", "as 'modules.<module>'"),
        ("modules.__init__:RAG", "programs.rag.impl", "as 'modules.<module>'"),
        ("modules.def:RAG", "programs.rag.impl", "'def' is a Python keyword"),
        ("modules.rag:Programs", "programs.rag.impl", "which generated programs.py already has"),
    ],
)
def test_impl_format_errors_are_located(impl: str, where: str, message: str) -> None:
    found = errors(SPEC.replace("impl: modules.rag:RAG", f"impl: {impl}", 1))
    assert any(path == where and message in text for path, text in found), found


def test_a_custom_listener_must_name_its_predictor() -> None:
    found = errors(
        SPEC.replace("{field: query, predictor: retrieve.write_query}", "{field: query}")
    )
    assert found[0][0] == "programs.rag.stream.0"
    assert "known only when the service starts" in found[0][1]


def test_a_custom_listener_on_a_structured_output_is_refused() -> None:
    text = SPEC.replace('"question -> answer"', '"question -> answer, score: float"', 1)
    text = text.replace("{field: query, predictor", "{field: score, predictor")
    assert (
        "programs.rag.stream.0.field",
        "'score' is float; only str fields stream token by token",
    ) in errors(text)


BUILTIN_WITH_IMPL = """\
version: 1
service: {name: demo}
lm: {model: openai/gpt-4o-mini}
programs:
  rag:
    module: Predict
    impl: modules.rag:RAG
    signature: "question -> answer"
"""


def test_impl_is_for_custom_modules_only_and_custom_needs_it() -> None:
    assert errors(SPEC.replace("impl: modules.rag:RAG\n    signature", "signature", 1))[0] == (
        "programs.rag",
        "a Custom module needs impl: 'modules.<module>:<Class>', e.g. 'modules.rag:RAG'",
    )
    assert errors(BUILTIN_WITH_IMPL) == [
        (
            "programs.rag.impl",
            "impl names a Custom module's class; Predict is DSPy's own "
            "(set module: Custom to use yours)",
        )
    ]
