"""module: BestOfN in the model: best_of resolved, its predictors the inner module's.

A BestOfN's predictors are those of the module it tries, under ``module.``, so
listeners and saved states are checked against them as for any built-in module.
Misuses are pinned, with their locations, in tests/invalid/best-of-n-misused.yaml.
"""

from __future__ import annotations

from pathlib import Path

import dspy
import pytest

from dspy_forge.dev.template_runtime import load_runtime
from dspy_forge.render.user_files import check_rewards
from dspy_forge.render.view import render_data
from dspy_forge.service.anatomy import predictors
from dspy_forge.service.model import BestOfModel, ListenerModel
from dspy_forge.spec.errors import SpecInvalid
from dspy_forge.spec.loader import load_spec, load_spec_text

SPEC = """\
version: 1
service: {name: demo}
lm: {model: openai/gpt-4o-mini}
programs:
  pick:
    module: BestOfN
    signature: "question -> answer"
    best_of: {module: ChainOfThought, attempts: 3, reward: "rewards:concise", threshold: 0.8}
    stream: [{field: answer}, {field: reasoning}]
  quick:
    module: BestOfN
    signature: "question -> answer"
    best_of: {module: Predict, attempts: 2, reward: "rewards:concise", threshold: 1}
"""


def test_a_best_of_n_program_holds_its_attempts_and_the_inner_modules_predictors() -> None:
    pick, quick = load_spec_text(SPEC).model.programs
    assert pick.best_of == BestOfModel("ChainOfThought", 3, "concise", 0.8)
    assert quick.best_of == BestOfModel("Predict", 2, "concise", 1.0)
    assert pick.listeners == (
        ListenerModel("answer", "module.predict", False),
        ListenerModel("reasoning", "module.predict", False),
    )
    assert [f.name for f in pick.extra_outputs] == ["reasoning"]  # from the ChainOfThought
    assert quick.extra_outputs == ()


def test_the_view_builds_it_with_listeners_that_are_not_live_and_one_reward_stub() -> None:
    data = render_data(load_spec_text(SPEC).model)
    pick, quick = data["programs"]
    assert quick["best_of"]["module"] == "Predict" and quick["listeners"] == []
    assert pick["best_of"] == {
        "module": "ChainOfThought",
        "attempts": 3,
        "reward": "concise",
        "threshold_py": "0.8",
    }
    assert {listener["live"] for listener in pick["listeners"]} == {False}
    assert data["reward_functions"] == ["concise"]  # shared by both programs: one stub
    other = render_data(load_spec_text(SPEC.split("  pick:")[0] + QA).model)
    assert other["reward_functions"] == [] and other["programs"][0]["best_of"] is None
    assert other["programs"][0]["listeners"][0]["live"] is True


QA = """\
  qa:
    module: Predict
    signature: "question -> answer"
    stream: [{field: answer}]
"""


@pytest.mark.parametrize("inner", ["Predict", "ChainOfThought"])
def test_the_anatomy_matches_what_the_runtime_builds(inner: str) -> None:
    load_runtime()
    from forge_service.runtime.best_of_n import BestOfN

    signature = dspy.Signature("question, context -> answer")
    built = BestOfN(
        getattr(dspy, inner)(signature), attempts=2, reward=lambda a, p: 1.0, threshold=1.0
    )
    actual = {
        name: (tuple(p.signature.input_fields), tuple(p.signature.output_fields))
        for name, p in built.named_predictors()
    }
    assert actual == predictors("BestOfN", ("question", "context"), ("answer",), inner)


def state_spec(folder: Path, inner: str = "ChainOfThought") -> Path:
    spec = folder / "spec.yaml"
    spec.write_text(
        SPEC.split("  quick:")[0].replace("ChainOfThought", inner) + "    state: state.json\n",
        encoding="utf-8",
    )
    return spec


def test_a_state_saved_from_a_best_of_n_is_accepted(tmp_path: Path) -> None:
    load_runtime()
    from forge_service.runtime.best_of_n import BestOfN

    saved = BestOfN(
        dspy.ChainOfThought("question -> answer"), attempts=3, reward=len, threshold=1.0
    )
    saved.save(str(tmp_path / "state.json"))
    program = load_spec(state_spec(tmp_path)).model.programs[0]
    assert program.state_file == "state/pick.json"


def test_a_state_saved_from_a_plain_chain_of_thought_is_refused_where_it_is_named(
    tmp_path: Path,
) -> None:
    dspy.ChainOfThought("question -> answer").save(str(tmp_path / "state.json"))
    with pytest.raises(SpecInvalid) as caught:
        load_spec(state_spec(tmp_path))
    (error,) = caught.value.errors
    assert error.dotted == "programs.pick.state" and error.location is not None
    assert "has no saved signature for predictor 'module.predict' of a BestOfN" in error.message
    assert "(it holds: predict)" in error.message


def test_a_reward_the_users_file_lacks_is_a_regenerate_notice(tmp_path: Path) -> None:
    model = load_spec_text(SPEC).model
    rewards = tmp_path / "src" / "demo" / "rewards.py"
    assert check_rewards(tmp_path, model) == []  # no file: nothing to say
    rewards.parent.mkdir(parents=True)
    rewards.write_text("def other(args, prediction):\n    return 1.0\n", encoding="utf-8")
    assert check_rewards(tmp_path, model) == [
        "src/demo/rewards.py has no concise, which programs.py uses as a reward: add\n"
        "    def concise(args: dict[str, Any], prediction: dspy.Prediction) -> float: ..."
    ]
    rewards.write_text("def concise(args, prediction):\n    return 1.0\n", encoding="utf-8")
    assert check_rewards(tmp_path, model) == []
