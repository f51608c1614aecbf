"""Optimize a program on its train examples: ``python -m <package> optimize``.

The program is built by ``build_programs`` as the service builds it (its LM,
its saved state, your custom module and tools), scored on the held-out
``examples`` (the dev set), compiled by a DSPy optimizer on the ``train``
examples, and scored again. The compiled program is written with
``module.save()``, JSON only, and beside it a record of the run: the optimizer
and every setting it was given, the examples' counts, the scores before and
after, the model and the versions, and the state's SHA-256.

The record is also what makes a later run allowed to replace the state: a file
that is there already is overwritten only when a record beside it says this
command wrote it, unchanged since (no command overwrites what it did not create).
"""

import datetime
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import dspy

from .evaluate import EvalSpec, evaluate, load_examples
from .program import ServedProgram

RECORD_SUFFIX = ".optimize.json"
PRESETS = ("light", "medium", "heavy")  # the ``auto`` budgets of MIPROv2 and GEPA
WRITER = "python -m {package} optimize"


class OptimizeError(Exception):
    """The run cannot start or its result cannot be written; the message says why."""


@dataclass(frozen=True)
class Optimizer:
    """A DSPy optimizer as this command offers it: its defaults and how it is run."""

    name: str
    summary: str
    defaults: Mapping[str, Any]
    build: Callable[[Callable[..., float], dspy.BaseLM, dict[str, Any], int], Any]
    compile_args: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    needs: str | None = None  # a module the optimizer imports, which the project may lack


def _bootstrap(metric: Callable[..., float], lm: dspy.BaseLM, s: dict[str, Any], threads: int):
    return dspy.BootstrapFewShot(
        metric=metric,
        max_bootstrapped_demos=s["max_bootstrapped_demos"],
        max_labeled_demos=s["max_labeled_demos"],
        max_rounds=s["max_rounds"],
    )


def _mipro(metric: Callable[..., float], lm: dspy.BaseLM, s: dict[str, Any], threads: int):
    return dspy.MIPROv2(
        metric=metric,
        prompt_model=lm,
        task_model=lm,
        auto=s["auto"],
        num_candidates=None if s["auto"] else s["num_candidates"],
        max_bootstrapped_demos=s["max_bootstrapped_demos"],
        max_labeled_demos=s["max_labeled_demos"],
        num_threads=threads,
        seed=s["seed"],
        verbose=False,
    )


def _mipro_compile(s: dict[str, Any]) -> dict[str, Any]:
    if s["auto"]:
        return {}
    return {"num_trials": s["num_trials"], "minibatch": False}


def _gepa(metric: Callable[..., float], lm: dspy.BaseLM, s: dict[str, Any], threads: int):
    def feedback_metric(
        gold: dspy.Example,
        pred: dspy.Prediction,
        trace: Any = None,
        pred_name: str | None = None,
        pred_trace: Any = None,
    ) -> float:
        # GEPA passes the predictor being improved too; the spec's metric scores the whole.
        return float(metric(gold, pred, trace))

    budget = {"auto": s["auto"]} if s["auto"] else {"max_metric_calls": s["max_metric_calls"]}
    return dspy.GEPA(
        metric=feedback_metric,
        reflection_lm=lm,
        num_threads=threads,
        seed=s["seed"],
        **budget,
    )


OPTIMIZERS: dict[str, Optimizer] = {
    optimizer.name: optimizer
    for optimizer in (
        Optimizer(
            "bootstrap-few-shot",
            "dspy.BootstrapFewShot: demos from the train examples and from traces that pass",
            {"max_bootstrapped_demos": 4, "max_labeled_demos": 16, "max_rounds": 1},
            _bootstrap,
        ),
        Optimizer(
            "mipro-v2",
            "dspy.MIPROv2: proposed instructions and demo sets, searched with Optuna",
            {
                "auto": "light",
                "num_candidates": 6,
                "num_trials": 10,
                "max_bootstrapped_demos": 4,
                "max_labeled_demos": 4,
                "seed": 9,
            },
            _mipro,
            _mipro_compile,
            needs="optuna",
        ),
        Optimizer(
            "gepa",
            "dspy.GEPA: instructions evolved by reflecting on the metric's results",
            {"auto": "light", "max_metric_calls": 100, "seed": 0},
            _gepa,
        ),
    )
}


def settings_for(name: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The optimizer's settings: its defaults, with those given (not None) over them.

    A budget given as a number (``num_trials``, ``max_metric_calls``) replaces
    the ``auto`` preset, which the optimizers take as one or the other.
    """
    optimizer = OPTIMIZERS[name]
    settings = dict(optimizer.defaults)
    unknown = sorted(
        key for key, value in given.items() if value is not None and key not in settings
    )
    if unknown:
        raise OptimizeError(f"{name} takes no {', '.join(unknown)}")
    settings.update({key: value for key, value in given.items() if value is not None})
    if settings.get("auto") not in (None, *PRESETS):
        raise OptimizeError(f"auto is one of {', '.join(PRESETS)}, not {settings['auto']!r}")
    if "auto" in settings and given.get("auto") is None:
        numbers = ("num_trials", "max_metric_calls", "num_candidates")
        if any(given.get(key) is not None for key in numbers):
            settings["auto"] = None
    return settings


def _program_lm(module: dspy.Module) -> dspy.BaseLM:
    lms = {id(p.lm): p.lm for _, p in module.named_predictors() if p.lm is not None}
    if not lms:
        raise OptimizeError("the program has no LM set on its predictors")
    return next(iter(lms.values()))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record_path(state: Path) -> Path:
    """Where the record of the run that wrote ``state`` lives: ``<stem>.optimize.json``."""
    return state.with_name(state.stem + RECORD_SUFFIX)


def check_writable(state: Path) -> None:
    """Refuse to replace a file that this command did not write, or that was changed since."""
    if not state.exists():
        return
    record = record_path(state)
    try:
        written = json.loads(record.read_text(encoding="utf-8")).get("state_sha256")
    except (OSError, ValueError, AttributeError):
        written = None
    if not state.is_file() or written != _digest(state):
        raise OptimizeError(
            f"{state} is there already and was not written by optimize (or was changed "
            "since): choose another --out, or move it away"
        )


def _write_atomically(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {"dspy": version("dspy")}


def optimize(
    spec: EvalSpec,
    served: ServedProgram,
    optimizer_name: str,
    given: Mapping[str, Any],
    *,
    package: str,
    out_state: Path,
    threads: int,
    progress: bool,
    out: TextIO,
    only_if_better: bool = False,
) -> dict[str, Any]:
    """Score, compile, score again, write the state and its record; the record.

    ``only_if_better``: write nothing when the score fell (the record says
    ``"written": false``), so that a state being served is never replaced by a worse one.
    """
    if spec.train is None:
        raise OptimizeError(
            f"{spec.program} has no train examples: add `train:` to it in the spec "
            "(the same forms as examples); optimize learns from train and scores examples"
        )
    optimizer = OPTIMIZERS[optimizer_name]
    if optimizer.needs is not None:
        try:
            __import__(optimizer.needs)
        except ImportError:
            raise OptimizeError(
                f"{optimizer_name} needs the {optimizer.needs} package: "
                f"pip install {optimizer.needs}"
            ) from None
    settings = settings_for(optimizer_name, given)
    check_writable(out_state)
    trainset = load_examples(spec, spec.train)
    devset = load_examples(spec)  # read once: before and after score the same examples
    lm = _program_lm(served.module)
    out.write(f"{spec.program}: scoring the current program on {spec.examples}\n")
    before = evaluate(spec, served.module, threads, progress=progress, devset=devset)
    out.write(f"{spec.program}: {optimizer_name} on {len(trainset)} train examples\n")
    with dspy.context(lm=lm):
        compiled = optimizer.build(spec.metric, lm, settings, threads).compile(
            served.module,
            trainset=trainset,
            **(optimizer.compile_args(settings) if optimizer.compile_args else {}),
        )
    compiled.set_lm(lm)  # optimizers reset the predictors' LMs in the copy they return
    after = evaluate(spec, compiled, threads, progress=progress, devset=devset)
    with tempfile.TemporaryDirectory() as folder:
        saved = Path(folder) / "state.json"
        compiled.save(saved)  # JSON: a .json path is never pickled
        state_text = saved.read_text(encoding="utf-8")
    record = {
        "written_by": WRITER.format(package=package),
        "program": spec.program,
        "optimizer": optimizer_name,
        "settings": settings,
        "metric": spec.metric_name,
        "train_examples": len(trainset),
        "dev_examples": before["examples"],
        "before": before["score"],
        "after": after["score"],
        "model": getattr(lm, "model", None),
        "versions": _versions(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "state": out_state.name,
        "state_sha256": hashlib.sha256(state_text.encode("utf-8")).hexdigest(),
    }
    if only_if_better and after["score"] < before["score"]:
        return {**record, "written": False}
    _write_atomically(out_state, state_text)
    _write_atomically(record_path(out_state), json.dumps(record, indent=2) + "\n")
    return record


def print_result(record: Mapping[str, Any], out: TextIO) -> None:
    """The before/after table of one run, and where its state went."""
    change = record["after"] - record["before"]
    rows = [
        ("program", "optimizer", "metric", "train", "dev", "before", "after", "change"),
        (
            record["program"],
            record["optimizer"],
            record["metric"],
            str(record["train_examples"]),
            str(record["dev_examples"]),
            f"{record['before']:.3f}",
            f"{record['after']:.3f}",
            f"{change:+.3f}",
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")
    settings = ", ".join(f"{key}={value}" for key, value in record["settings"].items())
    out.write(f"\nsettings: {settings}\n")
