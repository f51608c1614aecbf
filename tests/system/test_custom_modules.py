"""A Custom module as a user writes it: served on the fake LM, checked at start-up, kept.

The project is generated with ``module: Custom``; the test then fills in the
stub as a user would: a nested ``retrieve`` module whose predictor writes a
search query, the spec's ``search`` tool, then an ``answer`` ChainOfThought over
the passages; and a second class whose two predictors both output ``answer``,
one of them run twice (``allow_reuse``). Under uvicorn on the fake LM, the
stream carries each listened predictor's tokens (each event names its
predictor) and a status for each step. A listener naming no predictor, and a
saved state of another module, stop the service at start-up with messages that
list the module's predictors. Regenerating after a spec change leaves the
user's module file as it is.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import dspy
import httpx
import pytest
from httpx_sse import aconnect_sse

from dspy_forge.dev.devserver import fake_lm_env, running_service
from dspy_forge.dev.fakelm.testing import FakeLM
from dspy_forge.render.update import update_project
from dspy_forge.spec.loader import load_spec_text
from tests.system.update_helpers import (
    commit_all,
    generate_committed,
    git,
    git_source,
    template_repository,
)

PACKAGE = "custom_rag"
SPEC = """\
version: 1
service: {name: custom-rag}
lm: {model: openai/gpt-4o-mini}
tools:
  search:
    description: Search the knowledge base.
    args: {query: {type: str, description: What to look for.}}
programs:
  rag:
    module: Custom
    impl: modules.rag:RetrieveThenAnswer
    signature: "question -> answer"
    tools: [search]
    stream:
      - {field: query, predictor: retrieve.write_query}
      - {field: answer, predictor: answer.predict}
    status:
      tool_start: "Searching for {args}"
      tool_end: "Found passages"
      lm_start: "Asking {model}"
      lm_end: "{model} answered"
      module_start: "Starting {module}"
  polish:
    module: Custom
    impl: modules.rag:DraftThenPolish
    signature: "question -> answer"
    stream:
      - {field: answer, predictor: draft}
      - {field: answer, predictor: polish, allow_reuse: true}
"""
# The user's module file, replacing the generated stub.
MODULE = '''\
"""Our modules: retrieve then answer; draft then polish twice."""

from typing import Any

import dspy


class Retrieve(dspy.Module):
    """Write a search query for the question, and run it."""

    def __init__(self, search: dspy.Tool) -> None:
        super().__init__()
        self.search = search
        self.write_query = dspy.Predict("question -> query")

    async def aforward(self, question: str) -> list[str]:
        query = (await self.write_query.acall(question=question)).query
        return [str(await self.search.acall(query=query))]


class RetrieveThenAnswer(dspy.Module):
    def __init__(self, signature: type[dspy.Signature], tools: list[dspy.Tool]) -> None:
        super().__init__()
        self.retrieve = Retrieve({tool.name: tool for tool in tools}["search"])
        passages = dspy.InputField(desc="What the search found.")
        self.answer = dspy.ChainOfThought(signature.prepend("passages", passages, type_=list[str]))

    async def aforward(self, **inputs: Any) -> dspy.Prediction:
        passages = await self.retrieve.acall(question=inputs["question"])
        return await self.answer.acall(passages=passages, **inputs)


class DraftThenPolish(dspy.Module):
    def __init__(self, signature: type[dspy.Signature], tools: list[dspy.Tool]) -> None:
        super().__init__()
        self.draft = dspy.Predict(signature)
        self.polish = dspy.Predict("question, draft -> answer")

    async def aforward(self, **inputs: Any) -> dspy.Prediction:
        answer = (await self.draft.acall(**inputs)).answer
        for _ in range(2):
            answer = (await self.polish.acall(question=inputs["question"], draft=answer)).answer
        return dspy.Prediction(answer=answer)
'''
TOOL = '''\
async def search(query: str) -> str:
    """Search the knowledge base."""
    return f"passage about {query}"
'''
QUESTION = {"question": "What is DSPy?"}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return template_repository(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="module")
def project(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated project, its stub filled in and its tool written, committed."""
    where = tmp_path_factory.mktemp("custom")
    project = generate_committed(
        SPEC, where / "project", git_source(template), spec_dir=where / "specs"
    )
    stub = (project / "src" / PACKAGE / "modules" / "rag.py").read_text(encoding="utf-8")
    assert "class RetrieveThenAnswer(dspy.Module)" in stub
    assert "class DraftThenPolish(dspy.Module)" in stub
    (project / "src" / PACKAGE / "modules" / "rag.py").write_text(MODULE, encoding="utf-8")
    (project / "src" / PACKAGE / "tools" / "search.py").write_text(TOOL, encoding="utf-8")
    commit_all(project, "Our modules")
    return project


async def _stream(url: str, program: str) -> list[tuple[str, dict[str, Any]]]:
    async with (
        httpx.AsyncClient(base_url=url, timeout=60) as client,
        aconnect_sse(client, "POST", f"/v1/{program}/stream", json=QUESTION) as source,
    ):
        assert source.response.status_code == 200
        return [(sse.event, json.loads(sse.data)) async for sse in source.aiter_sse()]


def test_a_custom_module_streams_each_predictor_and_reports_each_step(
    project: Path, fake_lm: FakeLM
) -> None:
    with running_service(project, PACKAGE, fake_lm_env(fake_lm.api_base)) as service:
        ready = httpx.get(f"{service.url}/readyz").json()
        found = asyncio.run(_stream(service.url, "rag"))
    assert ready["programs"]["rag"]["predictors"] == ["retrieve.write_query", "answer.predict"]
    kinds = [event for event, _ in found]
    assert kinds[-2:] == ["prediction", "done"] and "error" not in kinds
    tokens = [data for event, data in found if event == "token"]
    by_predictor = {(t["predictor"], t["field"]) for t in tokens}
    assert by_predictor == {("retrieve.write_query", "query"), ("answer.predict", "answer")}
    answer = "".join(t["chunk"] for t in tokens if t["predictor"] == "answer.predict")
    assert answer == found[-2][1]["outputs"]["answer"]
    said = [(data["hook"], data["message"]) for event, data in found if event == "status"]
    assert said[0] == ("module_start", "Starting RetrieveThenAnswer")
    hooks = [hook for hook, _ in said]
    # Step one: the query's LM call, then the tool; step two: the answer's LM call.
    assert hooks[1:] == ["lm_start", "lm_end", "tool_start", "tool_end", "lm_start", "lm_end"]
    assert said[3][1].startswith('Searching for {"query": ')
    # The query was streamed before the search ran, the answer after it.
    fields = [data["field"] if event == "token" else None for event, data in found]
    first_query, first_answer = fields.index("query"), fields.index("answer")
    tool = next(i for i, (e, d) in enumerate(found) if e == "status" and d["hook"] == "tool_start")
    assert first_query < tool < first_answer


def test_predictors_streaming_one_field_name_are_told_apart(project: Path, fake_lm: FakeLM) -> None:
    with running_service(project, PACKAGE, fake_lm_env(fake_lm.api_base)) as service:
        found = asyncio.run(_stream(service.url, "polish"))
    tokens = [data for event, data in found if event == "token"]
    assert {t["field"] for t in tokens} == {"answer"}
    assert {t["predictor"] for t in tokens} == {"draft", "polish"}
    # polish runs twice (allow_reuse): its last run's chunks make the final answer.
    polished = [t for t in tokens if t["predictor"] == "polish"]
    final = found[-2][1]["outputs"]["answer"]
    assert "".join(t["chunk"] for t in polished).endswith(final)
    assert len("".join(t["chunk"] for t in polished)) > len(final)


def _start_up_log(project: Path, fake_lm: FakeLM, tmp_path: Path) -> str:
    log = tmp_path / "service.log"
    with (
        pytest.raises(RuntimeError, match="exited"),
        log.open("wb") as sink,
        running_service(project, PACKAGE, fake_lm_env(fake_lm.api_base), log=sink),
    ):
        pass
    return log.read_text(encoding="utf-8")


def test_a_listener_naming_no_predictor_fails_start_up_listing_them(
    project: Path, fake_lm: FakeLM, tmp_path: Path
) -> None:
    programs = project / "src" / PACKAGE / "programs.py"
    generated = programs.read_text(encoding="utf-8")
    programs.write_text(
        generated.replace('"retrieve.write_query"', '"retrieve.predict"'), encoding="utf-8"
    )
    try:
        text = _start_up_log(project, fake_lm, tmp_path)
    finally:
        programs.write_text(generated, encoding="utf-8")
    assert (
        "rag: no predictor named 'retrieve.predict' for the listener of 'query'; "
        "the module's predictors are: retrieve.write_query, answer.predict"
    ) in text


def test_a_listener_on_a_field_its_predictor_lacks_fails_start_up(
    project: Path, fake_lm: FakeLM, tmp_path: Path
) -> None:
    programs = project / "src" / PACKAGE / "programs.py"
    generated = programs.read_text(encoding="utf-8")
    programs.write_text(generated.replace('Listen("query"', 'Listen("passages"'), encoding="utf-8")
    try:
        text = _start_up_log(project, fake_lm, tmp_path)
    finally:
        programs.write_text(generated, encoding="utf-8")
    assert (
        "predictor 'retrieve.write_query' does not output 'passages' (its outputs are: query)"
    ) in text


def test_regenerating_after_a_spec_change_leaves_the_users_module_alone(
    project: Path, template: Path, tmp_path: Path
) -> None:
    changed = SPEC.replace('tool_end: "Found passages"', 'tool_end: "Read the passages"')
    # A new program whose class the user's (never rewritten) file does not have yet.
    changed += (
        "  critique:\n    module: Custom\n    impl: modules.rag:Critique\n"
        '    signature: "question -> answer"\n'
    )
    plan = update_project(
        load_spec_text(changed, base_dir=tmp_path), project, source=git_source(template)
    )
    try:
        module = project / "src" / PACKAGE / "modules" / "rag.py"
        assert module.read_text(encoding="utf-8") == MODULE
        programs = (project / "src" / PACKAGE / "programs.py").read_text(encoding="utf-8")
        assert '"tool_end": "Read the passages"' in programs
        assert "import Critique, DraftThenPolish, RetrieveThenAnswer" in programs
        assert "modules/rag.py" not in git(project, "status", "--porcelain")
        assert any(
            f"src/{PACKAGE}/modules/rag.py has no class Critique, which programs.py imports"
            in notice
            for notice in plan.notices
        ), plan.notices
    finally:
        git(project, "checkout", "-q", "--", ".")


def test_a_state_saved_from_another_module_is_refused_at_start_up(
    template: Path, fake_lm: FakeLM, tmp_path: Path
) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    # Saved from a ChainOfThought over the same signature: one predictor, 'predict'.
    dspy.ChainOfThought("question -> answer").save(str(specs / "saved.json"))
    spec = SPEC.replace("    tools: [search]\n", "    tools: [search]\n    state: saved.json\n")
    project = generate_committed(spec, tmp_path / "project", git_source(template), spec_dir=specs)
    (project / "src" / PACKAGE / "modules" / "rag.py").write_text(MODULE, encoding="utf-8")
    text = _start_up_log(project, fake_lm, tmp_path)
    assert (
        "rag.json was saved from another module: it holds predict, "
        "but this module's predictors are retrieve.write_query, answer.predict"
    ) in text
