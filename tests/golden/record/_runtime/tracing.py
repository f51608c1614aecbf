"""OpenTelemetry tracing of runs, LM calls and tool calls: off unless ``OTEL_*`` asks.

Tracing is on only when the standard variables ask for an OTLP exporter:
``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is
set, or ``OTEL_TRACES_EXPORTER`` is ``otlp``; and ``OTEL_SDK_DISABLED`` is not
true. Off, this module imports nothing of OpenTelemetry, registers no DSPy
callback and wraps nothing: :func:`run_span` returns one shared null context,
so a run pays one global read. On, it sets a TracerProvider that batches spans
to OTLP/HTTP (the exporter reads the other ``OTEL_*`` variables itself:
headers, timeout, protocol paths), instruments DSPy with OpenInference's
maintained instrumentor (a span per module, predictor, adapter, LM and tool
call), and adds the tokens and cost of each LM call to its span.

The packages come with the project's ``tracing`` extra; asked for without
them, the service logs a warning and runs untraced rather than not starting.
"""

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from dspy.utils.callback import BaseCallback

logger = logging.getLogger(__name__)

# The tracer, once start() has configured one; None while tracing is off.
_tracer: Any = None
_provider: Any = None
_OFF = contextlib.nullcontext()

RUN_SPAN = "run"
PROGRAM = "dspy_forge.program"
RUN_ID = "dspy_forge.run_id"
REQUEST_ID = "http.request.id"
ENDPOINT = "dspy_forge.endpoint"


def wanted(environ: dict[str, str] | None = None) -> bool:
    """Whether the standard ``OTEL_*`` variables ask for traces over OTLP."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",")}
    if "none" in exporters:
        return False
    return bool(
        "otlp" in exporters
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def start(service_name: str, version: str) -> bool:
    """Configure tracing if the environment asks for it; return whether it is on.

    Called once at app start-up; a second call keeps the first provider (DSPy
    is instrumented once per process, as its classes are patched).
    """
    global _tracer, _provider
    if _tracer is not None:
        return True
    if not wanted():
        return False
    try:
        from openinference.instrumentation.dspy import DSPyInstrumentor
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        logger.warning("OTEL_* asks for tracing, but %s is missing: pip install '.[tracing]'", exc)
        return False
    name = os.environ.get("OTEL_SERVICE_NAME") or service_name
    # Resource.create also reads OTEL_RESOURCE_ATTRIBUTES; the service name wins over it.
    resource = Resource.create({"service.name": name, "service.version": version})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    DSPyInstrumentor().instrument(tracer_provider=provider)
    import dspy

    dspy.settings.configure(callbacks=[*dspy.settings.callbacks, LMUsageOnSpan()])
    _provider = provider
    _tracer = trace.get_tracer(__package__ or __name__, version, tracer_provider=provider)
    logger.info("tracing on: spans go over OTLP/HTTP as service %s", name)
    return True


def shutdown() -> None:
    """Flush the spans still batched and stop exporting (the app's shutdown)."""
    global _tracer, _provider
    if _provider is None:
        return
    from openinference.instrumentation.dspy import DSPyInstrumentor

    DSPyInstrumentor().uninstrument()
    _provider.shutdown()
    _tracer = _provider = None


def enabled() -> bool:
    """Whether a tracer is configured (tests, the debug page)."""
    return _tracer is not None


def run_span(
    program: str, endpoint: str, run_id: str = "", request_id: str = ""
) -> contextlib.AbstractContextManager[Any]:
    """The span of one run, current for the ``with`` block; a shared null context when off.

    DSPy's spans started inside the block (in this task, or in tasks and
    threads that copy its context, as streamify's do) nest beneath it.
    """
    tracer = _tracer
    if tracer is None:
        return _OFF
    attributes = {PROGRAM: program, ENDPOINT: endpoint, "openinference.span.kind": "CHAIN"}
    if run_id:
        attributes[RUN_ID] = run_id
    if request_id:
        attributes[REQUEST_ID] = request_id
    return tracer.start_as_current_span(f"{RUN_SPAN} {program}", attributes=attributes)


class LMUsageOnSpan(BaseCallback):
    """Adds an LM call's tokens and cost (as the provider reported them) to its span.

    OpenInference's LM span names the model but not the usage. DSPy's
    callbacks run inside that span, and the call's history entry holds the
    very ``outputs`` list the callback is given, which finds the entry even
    when other runs share the LM.
    """

    def __init__(self) -> None:
        self._lms: dict[str, Any] = {}

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self._lms[call_id] = instance

    def on_lm_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        lm = self._lms.pop(call_id, None)
        if lm is None or outputs is None:
            return
        entry = next(_entries_with(lm, outputs), None)
        if entry is None:
            return
        from opentelemetry import trace

        span = trace.get_current_span()
        span.set_attributes(dict(_usage_attributes(entry)))


def _entries_with(lm: Any, outputs: Any) -> Iterator[dict[str, Any]]:
    history = getattr(lm, "history", None) or []
    for entry in reversed(history[-16:]):
        if isinstance(entry, dict) and entry.get("outputs") is outputs:
            yield entry


def _usage_attributes(entry: dict[str, Any]) -> Iterator[tuple[str, int | float]]:
    """OpenInference's token and cost attributes from a DSPy history entry."""
    usage = entry.get("usage") or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    if prompt or completion:
        yield "llm.token_count.prompt", prompt
        yield "llm.token_count.completion", completion
        yield "llm.token_count.total", int(usage.get("total_tokens") or prompt + completion)
    cost = entry.get("cost")
    if cost is None and (prompt or completion):
        from .metrics import _cost

        cost = _cost(str(entry.get("model") or ""), prompt, completion) or None
    if cost is not None:
        yield "llm.cost.total", float(cost)
