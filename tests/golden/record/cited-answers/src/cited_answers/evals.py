"""What ``python -m cited_answers eval`` scores: each program's examples, metric and threshold."""

from .runtime import evaluate

EVALS: dict[str, evaluate.EvalSpec] = {}
