"""Score the served programs on their examples: ``python -m <package> eval``.

The programs are built by ``build_programs`` exactly as the service builds them
(same LM settings, same saved states), so a score says how the service answers.
``dspy.Evaluate`` runs the examples that the spec gave (shipped in
``examples/<program>.jsonl``, checked against the signature at generation); this
module prints a table of scores and failures, writes a JSON report, and tells
the caller whether every program reached its threshold.
"""

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import dspy
from dspy.evaluate.metrics import em_score, f1_score

from .program import ServedProgram

logger = logging.getLogger(__name__)

Metric = Callable[..., float | bool]
EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
SHOWN_FAILURES = 10  # per program, in the printed table; the report holds every row


@dataclass(frozen=True)
class EvalSpec:
    """A program's evaluation, as the spec declared it."""

    program: str
    examples: str  # a file under examples/
    inputs: Sequence[tuple[str, str]]  # (public name, name inside the program)
    outputs: Sequence[str]
    metric: Metric
    metric_name: str
    threshold: float | None = None
    train: str | None = None  # a file under examples/ that optimize learns from


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def exact_match(field: str) -> Metric:
    """DSPy's exact match (``em_score``: normalised text) of one output field."""

    def metric(example: dspy.Example, prediction: dspy.Prediction, trace: Any = None) -> float:
        return float(em_score(_text(prediction.get(field)), _text(example.get(field))))

    return metric


def f1(field: str) -> Metric:
    """DSPy's token-overlap F1 (``f1_score``: normalised text) of one output field."""

    def metric(example: dspy.Example, prediction: dspy.Prediction, trace: Any = None) -> float:
        return float(f1_score(_text(prediction.get(field)), _text(example.get(field))))

    return metric


def load_examples(
    spec: EvalSpec, file: str | None = None, folder: Path = EXAMPLES_DIR
) -> list[dspy.Example]:
    """The program's examples (or those of ``file``), keyed as the program takes its inputs."""
    examples = []
    attrs = dict(spec.inputs)
    text = (folder / (file or spec.examples)).read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.strip():
            row = json.loads(line)
            values = {attrs.get(name, name): value for name, value in row.items()}
            inputs = [attrs[name] for name in row if name in attrs]
            examples.append(dspy.Example(**values).with_inputs(*inputs))
    return examples


def _row(
    spec: EvalSpec, index: int, example: dspy.Example, prediction: Any, score: Any
) -> dict[str, Any]:
    names = {attr: name for name, attr in spec.inputs}
    inputs = {names[key]: value for key, value in example.inputs().toDict().items()}
    expected = {key: example[key] for key in spec.outputs if key in example}
    predicted = {key: prediction.get(key) for key in spec.outputs}
    failed = not any(value is not None for value in predicted.values())
    return {
        "index": index,
        "inputs": inputs,
        "expected": expected,
        "predicted": predicted,
        "score": float(score or 0),
        "error": "the program raised; see the log" if failed else None,
    }


def evaluate(
    spec: EvalSpec,
    module: dspy.Module,
    threads: int,
    *,
    progress: bool = False,
    devset: list[dspy.Example] | None = None,
) -> dict[str, Any]:
    """Run one program's module on its examples; its part of the report.

    ``progress``: DSPy's progress bar on stderr (tqdm), for a person watching.
    ``devset``: the examples, read already (``optimize`` scores before and after on
    the same ones, even if the file changes while it compiles); else read now.
    """
    if devset is None:
        devset = load_examples(spec)
    evaluator = dspy.Evaluate(
        devset=devset,
        metric=spec.metric,
        num_threads=threads,
        display_progress=progress,
        display_table=False,
        max_errors=len(devset) + 1,  # every example is scored, failures as 0
    )
    result = evaluator(module)
    rows = [_row(spec, i, *item) for i, item in enumerate(result.results)]
    score = sum(row["score"] for row in rows) / len(rows) if rows else 0.0
    return {
        "program": spec.program,
        "metric": spec.metric_name,
        "examples": len(rows),
        "score": round(score, 4),
        "threshold": spec.threshold,
        "passed": spec.threshold is None or score >= spec.threshold,
        "rows": rows,
    }


def print_table(reports: Sequence[dict[str, Any]], out: TextIO) -> None:
    """Scores, one program a line, then each program's failures (score under 1)."""
    header = ("program", "metric", "examples", "score", "threshold", "result")
    lines = [header]
    for report in reports:
        threshold = report["threshold"]
        lines.append(
            (
                report["program"],
                report["metric"],
                str(report["examples"]),
                f"{report['score']:.3f}",
                "-" if threshold is None else f"{threshold:.3f}",
                "pass" if report["passed"] else "FAIL",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        out.write(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
        out.write("\n")
    for report in reports:
        failures = [row for row in report["rows"] if row["score"] < 1]
        if not failures:
            continue
        out.write(f"\n{report['program']}: {len(failures)} of {report['examples']} under 1\n")
        for row in failures[:SHOWN_FAILURES]:
            what = row["error"] or (
                f"expected {_short(row['expected'])}, got {_short(row['predicted'])}"
            )
            out.write(f"  #{row['index']} score {row['score']:.3f}: {what}\n")
        if len(failures) > SHOWN_FAILURES:
            out.write(f"  ... and {len(failures) - SHOWN_FAILURES} more in the report\n")


def _short(values: dict[str, Any], limit: int = 120) -> str:
    text = json.dumps(values, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run(
    specs: Sequence[EvalSpec],
    programs: dict[str, ServedProgram],
    *,
    threads: int,
    report: Path | None,
    out: TextIO,
    progress: bool = False,
) -> int:
    """Evaluate ``specs``; 0 when every program reaches its threshold, 1 when one does not."""
    reports = [
        evaluate(spec, programs[spec.program].module, threads, progress=progress) for spec in specs
    ]
    print_table(reports, out)
    passed = all(item["passed"] for item in reports)
    if report is not None:
        data = {"passed": passed, "programs": reports}
        report.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
        out.write(f"\nreport: {report}\n")
    return 0 if passed else 1
