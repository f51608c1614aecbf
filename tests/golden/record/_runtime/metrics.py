"""Prometheus metrics of the service, in a registry of its own per app.

LM usage and cost come from DSPy's usage tracker, as the provider reports
them. DSPy's tracker is reported to under-count some streamed calls (dspy#8265);
dspy-forge's tests check that a streamed run counts what the same JSON run does.
"""

import functools
import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import dspy
from dspy.utils.callback import BaseCallback
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .errors import describe

PRICE_FILE = "model_prices_and_context_window_backup.json"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """Every instrument of the service."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "dspy_requests",
            "Program requests by endpoint kind and outcome (ok, or the error code).",
            ["program", "endpoint", "outcome"],
            registry=r,
        )
        self.active_streams = Gauge(
            "dspy_active_streams", "Streamed runs in progress on this process.", registry=r
        )
        self.stream_seconds = Histogram(
            "dspy_stream_duration_seconds",
            "Duration of streams, open to last event.",
            ["program"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.first_token_seconds = Histogram(
            "dspy_time_to_first_token_seconds",
            "Time from request to the first token event.",
            ["program"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter("dspy_tokens_streamed", "Token events sent.", ["program"], registry=r)
        self.lm_seconds = Histogram(
            "dspy_lm_call_seconds",
            "Latency of LM calls.",
            ["program", "model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.lm_errors = Counter(
            "dspy_lm_errors",
            "Failed LM calls by error code.",
            ["program", "model", "code"],
            registry=r,
        )
        self.lm_tokens = Counter(
            "dspy_lm_tokens",
            "LM tokens by kind (prompt, completion), as the provider reports them.",
            ["program", "model", "kind"],
            registry=r,
        )
        self.lm_cost = Counter(
            "dspy_lm_cost_usd",
            "LM cost in USD, where it is known.",
            ["program", "model"],
            registry=r,
        )

    def record_usage(self, program: str, prediction: dspy.Prediction) -> None:
        """Count the tokens and cost of a finished run."""
        usage = prediction.get_lm_usage() or {}
        for model, counts in usage.items():
            prompt = int(counts.get("prompt_tokens") or 0)
            completion = int(counts.get("completion_tokens") or 0)
            self.lm_tokens.labels(program, model, "prompt").inc(prompt)
            self.lm_tokens.labels(program, model, "completion").inc(completion)
            cost = _cost(model, prompt, completion)
            if cost:
                self.lm_cost.labels(program, model).inc(cost)


class LMCallMetrics(BaseCallback):
    """Times the LM calls of one run and counts their failures."""

    def __init__(self, metrics: Metrics, program: str) -> None:
        self._metrics = metrics
        self._program = program
        self._started: dict[str, tuple[str, float]] = {}

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self._started[call_id] = (getattr(instance, "model", "unknown"), time.perf_counter())

    def on_lm_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        model, started = self._started.pop(call_id, ("unknown", time.perf_counter()))
        self._metrics.lm_seconds.labels(self._program, model).observe(time.perf_counter() - started)
        if exception is not None:
            code = describe(exception).code
            self._metrics.lm_errors.labels(self._program, model, code).inc()


def run_context(*callbacks: BaseCallback) -> Any:
    """DSPy settings of one run: usage tracking, and ``callbacks`` beside the configured ones.

    A JSON run passes its ``LMCallMetrics``; a streamed run passes none, for its
    ``StatusReporter`` tells an ``LMCallMetrics`` of each LM call itself. DSPy
    picks each callback's hook by ``isinstance`` checks, one against a
    ``Protocol``, for every callback at every module, adapter, LM and tool call:
    one callback fewer is about 3% of a streamed run's instructions
    (docs/benchmarks.md).
    """
    if not callbacks:
        return dspy.context(track_usage=True)
    return dspy.context(callbacks=[*dspy.settings.callbacks, *callbacks], track_usage=True)


@functools.cache
def _price_list() -> dict[str, Any]:
    """LiteLLM's bundled price list, read as a file: importing LiteLLM takes seconds."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(spec.submodule_search_locations[0]) / PRICE_FILE
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


@functools.lru_cache(maxsize=256)
def _price(model: str) -> tuple[float, float] | None:
    """USD per prompt and completion token of ``model``, if LiteLLM knows it."""
    prices = _price_list()
    entry = prices.get(model) or prices.get(model.split("/", 1)[-1])
    if not isinstance(entry, dict):
        return None
    prompt = float(entry.get("input_cost_per_token") or 0)
    completion = float(entry.get("output_cost_per_token") or 0)
    return prompt, completion


def _cost(model: str, prompt: int, completion: int) -> float:
    price = _price(model)
    return price[0] * prompt + price[1] * completion if price else 0.0
