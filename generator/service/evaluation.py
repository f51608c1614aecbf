"""Resolve a program's evaluation: its metric against the signature, and its examples.

Kept apart from :mod:`.build` because it reads files beside the spec (through
:mod:`.examples`) and owns the rules of ``examples``, ``metric`` and ``threshold``:
a metric, a threshold and train examples need examples, examples need a metric,
a built-in metric names an output field, a user function lives in the package's
``metrics.py``.
"""

from __future__ import annotations

import json
import keyword
from pathlib import Path
from typing import Any, Literal

from dspy_forge.service.examples import check_examples
from dspy_forge.service.model import EvalModel, MetricModel, SignatureModel
from dspy_forge.spec.contract import ProgramSpec
from dspy_forge.spec.errors import Path as KeyPath
from dspy_forge.spec.errors import SpecError
from dspy_forge.spec.hints import suggest

Files = list[tuple[str, str]]
Resolved = tuple[EvalModel | Literal[False] | None, Files, list[SpecError]]


def resolve_evaluation(
    name: str, raw: ProgramSpec, path: KeyPath, signature: SignatureModel, base_dir: Path | None
) -> Resolved:
    """The program's eval (None without one, False when wrong), the files it ships, errors.

    Each file is ``(package path, JSONL text)``: the rows as checked and
    normalised, written into the generated project: the examples that eval
    scores, and the ``train`` examples that optimize learns from.
    """
    if raw.examples is None:
        wrong = [key for key in ("metric", "threshold", "train") if getattr(raw, key) is not None]
        errors = [SpecError((*path, key), _NEEDS_EXAMPLES[key]) for key in wrong]
        return (False if wrong else None), [], errors
    metric, errors = _metric(raw, path, signature)
    required = (metric.field,) if metric is not None and metric.field else ()
    rows, row_errors = check_examples(
        raw.examples, signature, required, base_dir, (*path, "examples")
    )
    errors += row_errors
    train: list[dict[str, Any]] | None = None
    if raw.train is not None:
        train, train_errors = check_examples(
            raw.train, signature, required, base_dir, (*path, "train")
        )
        errors += train_errors
    if metric is None or errors:
        return False, [], errors
    target = f"examples/{name}.jsonl"
    files = [(target, _jsonl(rows))]
    train_target = None
    if train is not None:
        train_target = f"examples/{name}.train.jsonl"
        files.append((train_target, _jsonl(train)))
    model = EvalModel(target, len(rows), metric, raw.threshold, train_target, len(train or ()))
    return model, files, []


_NEEDS_EXAMPLES = {
    "metric": "metric scores examples; add examples",
    "threshold": "threshold scores examples; add examples",
    "train": "optimize scores what it learns from train on examples, the held-out set; "
    "add examples too",
}


def _jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _metric(
    raw: ProgramSpec, path: KeyPath, signature: SignatureModel
) -> tuple[MetricModel | None, list[SpecError]]:
    where = (*path, "metric")
    metric = raw.metric
    outputs = [f.name for f in signature.outputs]
    if metric is None:
        example = f"metric: {{name: exact_match, field: {outputs[0]}}}"
        return None, [SpecError(path, f"examples need a metric to score them, e.g. {example}")]
    if (metric.name is None) == (metric.function is None):
        message = "give either name (a built-in metric) or function (yours), not both"
        return None, [SpecError(where, message)]
    if metric.function is not None:
        function = metric.function.split(":", 1)[1]
        if metric.field is not None:
            message = "field is for a built-in metric; your function reads what it needs"
            return None, [SpecError((*where, "field"), message)]
        if keyword.iskeyword(function) or function.startswith("_"):
            message = f"{function!r} cannot be a public Python function name; choose another"
            return None, [SpecError((*where, "function"), message)]
        return MetricModel(None, None, function), []
    if metric.field is None:
        fields = ", ".join(outputs)
        message = f"{metric.name} compares an output field: add field (one of: {fields})"
        return None, [SpecError(where, message)]
    if metric.field not in outputs:
        hint = suggest(metric.field, set(outputs), what="output fields")
        message = f"{metric.field!r} is not an output field{hint}"
        return None, [SpecError((*where, "field"), message)]
    return MetricModel(metric.name, metric.field, None), []
