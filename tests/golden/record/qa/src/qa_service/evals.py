"""What ``python -m qa_service eval`` scores: each program's examples, metric and threshold."""

from .runtime import evaluate

EVALS: dict[str, evaluate.EvalSpec] = {
    "qa": evaluate.EvalSpec(
        program="qa",
        examples="qa.jsonl",
        train="qa.train.jsonl",
        inputs=[
            ("question", "question"),
        ],
        outputs=[
            "answer",
        ],
        metric=evaluate.f1("answer"),
        metric_name="f1(answer)",
        threshold=0.5,
    ),
}
