"""runtime/optimize.py: the optimizers' settings, and which files a run may replace."""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

import pytest
from forge_service.runtime import optimize, optimize_options

from dspy_forge.dev import optimization
from dspy_forge.program_commands import Optimizer, optimize_command


def test_defaults_apply_and_a_number_budget_replaces_the_preset() -> None:
    assert optimize.settings_for("bootstrap-few-shot", {}) == {
        "max_bootstrapped_demos": 4,
        "max_labeled_demos": 16,
        "max_rounds": 1,
    }
    mipro = optimize.settings_for("mipro-v2", {"num_trials": 2, "num_candidates": 2})
    assert mipro["auto"] is None and mipro["num_trials"] == 2
    assert optimize.settings_for("gepa", {"auto": "medium"})["auto"] == "medium"


def test_a_setting_the_optimizer_does_not_take_is_refused() -> None:
    with pytest.raises(optimize.OptimizeError, match="bootstrap-few-shot takes no num_trials"):
        optimize.settings_for("bootstrap-few-shot", {"num_trials": 3})
    with pytest.raises(optimize.OptimizeError, match="auto is one of light, medium, heavy"):
        optimize.settings_for("gepa", {"auto": "huge"})


def test_a_file_is_replaced_only_when_its_record_says_optimize_wrote_it(tmp_path: Path) -> None:
    state = tmp_path / "qa.json"
    optimize.check_writable(state)  # not there: fine
    state.write_text("{}", encoding="utf-8")
    with pytest.raises(optimize.OptimizeError, match="was not written by optimize"):
        optimize.check_writable(state)
    record = optimize.record_path(state)
    assert record.name == "qa.optimize.json"
    digest = hashlib.sha256(b"{}").hexdigest()
    record.write_text(json.dumps({"state_sha256": digest}), encoding="utf-8")
    optimize.check_writable(state)
    state.write_text('{"changed": 1}', encoding="utf-8")  # edited since: the user's now
    with pytest.raises(optimize.OptimizeError):
        optimize.check_writable(state)


def test_the_generator_offers_what_the_project_runs() -> None:
    assert [o.value for o in Optimizer] == list(optimize.OPTIMIZERS)
    assert tuple(optimize.OPTIMIZERS) == optimize_options.NAMES  # the project's parser's choices
    options = set(inspect.signature(optimize_command).parameters)
    assert set(optimize_options.SETTINGS) <= options
    assert optimization.RECORD_SUFFIX == optimize.RECORD_SUFFIX


def test_before_and_after_are_scored_on_the_examples_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long compile must not score ``after`` on an examples file edited meanwhile."""
    import io
    from types import SimpleNamespace

    import dspy
    from dspy.utils.dummies import DummyLM
    from forge_service.runtime.evaluate import EvalSpec, exact_match
    from forge_service.runtime.program import ServedProgram

    reads: list[str | None] = []

    def load_examples(spec: EvalSpec, file: str | None = None) -> list[dspy.Example]:
        reads.append(file)
        return [dspy.Example(question=f"q{n}", answer="a").with_inputs("question") for n in (1, 2)]

    monkeypatch.setattr(optimize, "load_examples", load_examples)
    keep = optimize.Optimizer(
        "keep", "returns the program", {}, lambda *_: SimpleNamespace(compile=lambda m, **_: m)
    )
    monkeypatch.setitem(optimize.OPTIMIZERS, "keep", keep)
    module = dspy.Predict("question -> answer")
    module.set_lm(DummyLM([{"answer": "a"}] * 4))
    spec = EvalSpec(
        program="qa",
        # Files that do not exist: a read that bypassed the examples read once would fail.
        examples="not-there-dev.jsonl",
        inputs=[("question", "question")],
        outputs=["answer"],
        metric=exact_match("answer"),
        metric_name="exact_match",
        train="not-there-train.jsonl",
    )
    record = optimize.optimize(
        spec,
        ServedProgram("qa", module),
        "keep",
        {},
        package="qa_service",
        out_state=tmp_path / "qa.json",
        threads=1,
        progress=False,
        out=io.StringIO(),
    )
    assert reads == ["not-there-train.jsonl", None]  # train once, the dev examples once
    assert record["dev_examples"] == 2 and record["before"] == record["after"] == 1.0
    assert (tmp_path / "qa.json").exists()
