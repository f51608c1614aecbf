"""How long ``dspy-forge generate`` takes as a spec grows, and how long the CLI takes to start.

Specs with ``n`` programs are synthesised: the programs cycle through ``Predict``,
``ChainOfThought`` and ``ReAct`` (with a tool), over a named signature of their own each
(one in three with a typed output), each streaming its ``answer`` with status messages;
so every program adds a signature, a request and response schema, routes and a builder.
Each time is the wall time of the ``dspy-forge`` console script in a fresh process, as a
user runs it.
"""

from __future__ import annotations

import itertools
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CLI = Path(sys.executable).with_name("dspy-forge")


def synthetic_spec(programs: int) -> str:
    """A valid spec with ``programs`` programs."""
    lines = [
        "version: 1",
        f"service: {{name: bench-{programs}, title: Bench {programs}}}",
        "lm: {model: openai/gpt-4o-mini, api_key_env: OPENAI_API_KEY, cache: false}",
        "tools:",
        "  search:",
        "    description: Search for information.",
        "    args: {query: {type: str, description: What to look for.}}",
        "    returns: str",
        "signatures:",
    ]
    for index in range(programs):
        extra = "      score: {type: float, description: How sure.}" if index % 3 == 2 else None
        lines += [
            f"  Sig{index:03d}:",
            f"    instructions: Answer question number {index} briefly.",
            "    inputs:",
            "      question: {type: str, description: The question.}",
            '      context: {type: "list[str]", description: Notes.}',
            "    outputs:",
            "      answer: {type: str, description: The answer.}",
        ]
        if extra:
            lines.append(extra)
    lines.append("programs:")
    modules = ("Predict", "ChainOfThought", "ReAct")
    for index in range(programs):
        module = modules[index % 3]
        lines += [
            f"  p{index:03d}:",
            f"    module: {module}",
            f"    signature: Sig{index:03d}",
            f"    description: Program {index}.",
        ]
        if module == "ReAct":
            lines += ["    tools: [search]", "    max_iters: 4"]
        lines += [
            "    stream: [{field: answer}]",
            "    status: {lm_start: Thinking..., module_end: null}",
        ]
    return "\n".join(lines) + "\n"


def _timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def measure(sizes: tuple[int, ...], runs: int, cold_runs: int) -> dict[str, Any]:
    """Generation wall time per spec size and CLI cold start; medians over ``runs``."""
    generate: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-gen-") as tmp:
        folder = Path(tmp)
        cold = [_timed([str(CLI), "--help"], folder) for _ in range(cold_runs)]
        spec_qa = Path(__file__).resolve().parent.parent / "specs" / "qa.yaml"
        validate = [_timed([str(CLI), "validate", str(spec_qa)], folder) for _ in range(cold_runs)]
        for size in sizes:
            spec = folder / f"spec-{size}.yaml"
            spec.write_text(synthetic_spec(size), encoding="utf-8")
            times = []
            for run in range(runs):
                out = folder / f"out-{size}-{run}"
                times.append(_timed([str(CLI), "generate", str(spec), "--out", str(out)], folder))
            lines = sum(
                len(path.read_text(encoding="utf-8").splitlines())
                for path in (folder / f"out-{size}-0").rglob("*.py")
            )
            generate[str(size)] = {
                "times": times,
                "median": statistics.median(times),
                "lines": lines,
            }
    fit = linear_fit([(int(n), v["median"]) for n, v in generate.items()])
    fit["marginal_ms_per_program"] = marginal(generate)
    return {
        "cold_start": {"times": cold, "median": statistics.median(cold)},
        "validate": {"times": validate, "median": statistics.median(validate)},
        "generate": generate,
        "fit": fit,
    }


def marginal(generate: dict[str, Any]) -> list[dict[str, float]]:
    """Milliseconds each added program costs between consecutive spec sizes."""
    sizes = sorted(generate, key=int)
    return [
        {
            "from": int(a),
            "to": int(b),
            "ms": 1000 * (generate[b]["median"] - generate[a]["median"]) / (int(b) - int(a)),
        }
        for a, b in itertools.pairwise(sizes)
    ]


def linear_fit(points: list[tuple[int, float]]) -> dict[str, float | None]:
    """Least-squares ``t = intercept + slope * n`` and its R² (None with fewer than 2 sizes)."""
    if len(points) < 2:
        return {"intercept": None, "slope": None, "r2": None}
    xs = [float(x) for x, _ in points]
    ys = [y for _, y in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = mean_y - slope * mean_x
    total = sum((y - mean_y) ** 2 for y in ys)
    residual = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    return {"intercept": intercept, "slope": slope, "r2": 1 - residual / total if total else 1.0}
