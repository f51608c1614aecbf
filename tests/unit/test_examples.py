"""Eval examples in the spec: every row checked against the signature, every error located."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dspy_forge.render.view import render_data
from dspy_forge.spec.errors import SpecInvalid
from dspy_forge.spec.loader import load_spec

HEAD = """version: 1
service: {name: ev}
lm: {model: openai/x}
programs:
  qa:
    module: Predict
    signature: "question, n: int -> answer"
"""


def write(tmp_path: Path, body: str, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / name.replace("_", ".")).write_text(text, encoding="utf-8")
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + body, encoding="utf-8")
    return spec


def errors(spec: Path) -> list[str]:
    with pytest.raises(SpecInvalid) as caught:
        load_spec(spec)
    return [error.render() for error in caught.value.errors]


METRIC = "    metric: {name: exact_match, field: answer}\n"


def test_jsonl_rows_are_located_by_line_all_in_one_run(tmp_path: Path) -> None:
    rows = [
        '{"question": "a", "n": 1, "answer": "x"}',
        '{"question": "b", "n": "1", "answer": "y"}',
        "",
        "not json",
        '{"question": "c", "n": 2, "answr": "z"}',
        "[1, 2]",
    ]
    spec = write(tmp_path, "    examples: ex.jsonl\n" + METRIC, ex_jsonl="\n".join(rows) + "\n")
    found = errors(spec)
    where = f"{tmp_path / 'ex.jsonl'}"
    assert (
        f"{where}:2: programs.qa.examples: field 'n': Input should be a valid integer" in (found[0])
    )
    assert any(e.startswith(f"{where}:4: ") and "not JSON" in e for e in found)
    assert any(
        e.startswith(f"{where}:5: ") and "'answr' is not in the signature" in e for e in found
    )
    assert any(e.startswith(f"{where}:5: ") and "'answer' is missing" in e for e in found)
    assert any(e.startswith(f"{where}:6: ") and "not a list" in e for e in found)
    assert len(found) == 5


def test_csv_rows_are_located_by_line_and_cells_read_as_their_type(tmp_path: Path) -> None:
    text = "question,n,answer\nhi,2,x\nho,two,y\n,3,z\n"
    spec = write(tmp_path, "    examples: ex.csv\n" + METRIC, ex_csv=text)
    found = errors(spec)
    where = f"{tmp_path / 'ex.csv'}"
    assert len(found) == 2
    assert found[0].startswith(f"{where}:3: ") and "field 'n'" in found[0] and '"two"' in found[0]
    assert found[1].startswith(f"{where}:4: ") and "'question' is missing" in found[1]


def test_inline_rows_are_located_in_the_spec(tmp_path: Path) -> None:
    body = (
        "    examples:\n"
        "      - {question: a, n: 1, answer: a}\n"
        "      - {question: b, n: x, answer: b}\n"
        "      - {n: 1, answer: c}\n" + METRIC
    )
    found = errors(write(tmp_path, body))
    spec = tmp_path / "spec.yaml"
    assert found == [
        f"{spec}:10:9: programs.qa.examples[1]: field 'n': Input should be a valid integer, "
        'not "x" (its type is int)',
        f"{spec}:11:9: programs.qa.examples[2]: field 'question' is missing "
        "(an input of the signature)",
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("    metric: {name: f1, field: answer}\n", "programs.qa.metric: metric scores examples"),
        ("    threshold: 0.5\n", "programs.qa.threshold: threshold scores examples"),
        ("    examples: [{question: a, n: 1}]\n", "examples need a metric"),
        (
            "    examples: [{question: a, n: 1, answer: b}]\n"
            "    metric: {name: f1, field: anser}\n",
            "'anser' is not an output field; did you mean 'answer'?",
        ),
        (
            "    examples: [{question: a, n: 1}]\n    metric: {name: f1}\n",
            "f1 compares an output field",
        ),
        (
            "    examples: [{question: a, n: 1}]\n"
            "    metric: {name: f1, function: 'metrics:score', field: answer}\n",
            "either name",
        ),
        ("    examples: ../ex.jsonl\n" + METRIC, "leads outside the spec's folder"),
        ("    examples: missing.jsonl\n" + METRIC, "no such file"),
        ("    examples: spec.yaml\n" + METRIC, "a .jsonl or .csv file"),
        ("    examples: []\n" + METRIC, "no examples"),
        ("    examples: [{question: a, n: 1, answer: b}]\n" + METRIC + "    threshold: 2\n", "1"),
    ],
)
def test_metric_and_examples_rules(tmp_path: Path, body: str, message: str) -> None:
    assert any(message in error for error in errors(write(tmp_path, body)))


def test_valid_examples_are_normalised_into_the_model(tmp_path: Path) -> None:
    text = "question,n,answer\nhi,2,x\n"
    body = "    examples: ex.csv\n    metric: {function: 'metrics:score'}\n    threshold: 0.75\n"
    model = load_spec(write(tmp_path, body, ex_csv=text)).model
    assert model.example_sets == (
        ("examples/qa.jsonl", json.dumps({"question": "hi", "n": 2, "answer": "x"}) + "\n"),
    )
    evaluation = model.programs[0].evaluation
    assert evaluation is not None and evaluation.count == 1 and evaluation.threshold == 0.75
    view = render_data(model)
    assert view["metric_functions"] == ["score"]
    assert view["programs"][0]["evaluation"] == {
        "metric": None,
        "field": None,
        "function": "score",
        "threshold_py": "0.75",
        "outputs": ["answer"],
        "train": None,
    }


def test_typed_fields_are_checked_by_their_type(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        """version: 1
service: {name: ev}
lm: {model: openai/x}
programs:
  tag:
    module: Predict
    signature: "text, hint: str | None -> tags: list[str], mood: Literal['up', 'down']"
    examples:
      - {text: a, tags: [x, y], mood: up}
      - {text: b, hint: null, tags: x, mood: sideways}
    metric: {name: exact_match, field: mood}
""",
        encoding="utf-8",
    )
    found = errors(spec)
    assert len(found) == 2
    assert "examples[1]: field 'mood': Input should be 'up' or 'down'" in found[0] + found[1]
    assert "examples[1]: field 'tags': Input should be a valid list" in found[0] + found[1]


def test_train_examples_are_checked_and_shipped_beside_the_examples(tmp_path: Path) -> None:
    rows = '{"question": "a", "n": 1, "answer": "x"}\n{"question": "b", "answer": "y"}\n'
    body = "    examples: [{question: q, n: 1, answer: a}]\n    train: tr.jsonl\n" + METRIC
    found = errors(write(tmp_path, body, tr_jsonl=rows))
    assert found == [
        f"{tmp_path / 'tr.jsonl'}:2: programs.qa.train: field 'n' is missing "
        "(an input of the signature)"
    ]
    good = '{"question": "a", "n": 1, "answer": "x"}\n'
    model = load_spec(write(tmp_path, body, tr_jsonl=good)).model
    assert [target for target, _ in model.example_sets] == [
        "examples/qa.jsonl",
        "examples/qa.train.jsonl",
    ]
    evaluation = model.programs[0].evaluation
    assert evaluation is not None and evaluation.train_count == 1
    assert render_data(model)["programs"][0]["evaluation"]["train"] == "qa.train.jsonl"


def test_train_without_examples_is_refused(tmp_path: Path) -> None:
    found = errors(write(tmp_path, "    train: [{question: q, n: 1, answer: a}]\n" + METRIC))
    assert any("programs.qa.train: optimize scores" in e and "add examples" in e for e in found)
