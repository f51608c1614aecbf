"""A served DSPy program: built once at start-up, run once per request.

The module and its LM are shared by every request; everything that holds the
state of one run (stream listeners, the status reporter, what was streamed so
far) is created per request, so concurrent requests never see each other's
tokens and a listener never stops after its first request.
"""

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dspy
from dspy.streaming import StatusMessage, StreamListener, StreamResponse
from dspy.utils.callback import BaseCallback

from .events import Event, StatusEvent, TokenEvent
from .status import Status, StatusReporter
from .text import clean_text, split_chunk

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Listen:
    """An output field of a predictor to stream token by token.

    ``live=False`` streams no token while the program runs: the field arrives as
    one chunk, completed from the final Prediction. A BestOfN program's listeners
    are so, because an attempt's tokens are not the answer until the attempts are
    scored, and a field's chunks must concatenate to exactly its final value.
    """

    field: str
    predictor: str
    allow_reuse: bool = False
    live: bool = True


class ServedProgram:
    """One program of the service, with its streaming and status configuration."""

    def __init__(
        self,
        name: str,
        module: dspy.Module,
        *,
        listen: Sequence[Listen] = (),
        status: Mapping[str, str | None] | None = None,
        module_hooks: str = "program",
        state: str | None = None,
        lm_configured: bool = True,
    ) -> None:
        self.name = name
        self.module = module
        self.status = dict(status or {})
        self.module_hooks = module_hooks  # "program": its own module only; "all": every module
        self.listen = tuple(listen)
        self.state = state  # the saved state file loaded into the module, if any
        self.lm_configured = lm_configured
        predictors = dict(module.named_predictors())
        self.predictors = tuple(predictors)  # as named_predictors() names them (/readyz)
        if problems := _listen_problems(self.listen, predictors):
            raise ValueError(f"{name}: " + "; ".join(problems))
        self._listen = tuple((item, predictors[item.predictor]) for item in listen)

    async def predict(self, inputs: dict[str, Any]) -> dspy.Prediction:
        """Run the program to completion."""
        return await self.module.acall(**inputs)

    async def events(
        self, inputs: dict[str, Any], lm_calls: BaseCallback | None = None
    ) -> AsyncIterator[Event | dspy.Prediction]:
        """Run the program, yielding status and token events, then the final Prediction.

        ``lm_calls``: a callback told of every LM call by the run's status
        reporter rather than by DSPy (``metrics.run_context`` says why).

        Every listened field that is also a final output is completed from the
        Prediction, so its chunks always concatenate to exactly its value: DSPy
        streams nothing on a cache hit, a listener can miss a field's end, and a
        listener that is not live (``Listen.live``) streams nothing before it.
        """
        listeners = [
            StreamListener(
                item.field,
                predict=predictor,
                predict_name=item.predictor,
                allow_reuse=item.allow_reuse,
            )
            for item, predictor in self._listen
            if item.live
        ]
        own = None if self.module_hooks == "all" else self.module
        reporter = StatusReporter(self.name, own, self.status, lm_calls)
        # streamify reads the callbacks when it is created, not when it runs.
        with dspy.context(callbacks=[*dspy.settings.callbacks, reporter]):
            run = dspy.streamify(self.module, stream_listeners=listeners, is_async_program=True)
        streamed: dict[tuple[str, str], str] = {}  # per field: the text sent so far
        held: dict[tuple[str, str], str] = {}  # per field: half a surrogate pair (text.py)
        ended: set[tuple[str, str]] = set()
        latest: dict[str, str] = {}  # per field name: the predictor that streamed it last
        # Iterate to the end, and close in this task if our reader stops early (note 1 of run.py).
        async with contextlib.aclosing(run(**inputs)) as items:
            async for item in items:
                if isinstance(item, StreamResponse):
                    key = (item.predict_name, item.signature_field_name)
                    if key in ended:  # the predictor runs again (allow_reuse): a new value
                        ended.discard(key)
                        streamed[key] = held[key] = ""
                    latest[item.signature_field_name] = item.predict_name
                    chunk, held[key] = split_chunk(held.get(key, ""), item.chunk)
                    streamed[key] = streamed.get(key, "") + chunk
                    if item.is_last_chunk:
                        ended.add(key)
                    if chunk:
                        yield TokenEvent(
                            predictor=item.predict_name,
                            field=item.signature_field_name,
                            chunk=chunk,
                        )
                elif isinstance(item, Status):
                    yield StatusEvent(
                        message=clean_text(item.message),
                        hook=item.hook,
                        tool=item.tool,
                        call_id=item.call_id,
                        args=None if item.args is None else clean_text(item.args),
                        output=None if item.output is None else clean_text(item.output),
                    )
                elif isinstance(item, StatusMessage):
                    yield StatusEvent(message=clean_text(item.message), hook="custom", call_id="")
                elif isinstance(item, dspy.Prediction):
                    for listen in self._completed(latest):
                        if rest := self._rest_of(listen, item, streamed):
                            yield TokenEvent(
                                predictor=listen.predictor, field=listen.field, chunk=rest
                            )
                    yield item

    def _completed(self, latest: Mapping[str, str]) -> list[Listen]:
        """The listeners that the final Prediction completes: one per field name.

        Several predictors may stream a field of the same name (a custom module's
        draft and its final answer); the Prediction holds the last one's value, so
        it completes the listener that streamed that field last, or the last one
        listed when none streamed (a cache hit).
        """
        chosen: dict[str, Listen] = {}
        for listen, _ in self._listen:
            if latest.get(listen.field) in (None, listen.predictor):
                chosen[listen.field] = listen
        return list(chosen.values())

    def _rest_of(
        self, listen: Listen, prediction: dspy.Prediction, streamed: dict[tuple[str, str], str]
    ) -> str:
        """The part of a final output that its token events have not carried yet."""
        final = prediction.get(listen.field)
        if not isinstance(final, str):
            return ""  # not a final output (e.g. ReAct's next_thought)
        final = clean_text(final)
        sent = streamed.get((listen.predictor, listen.field), "")
        if final.startswith(sent):
            return final[len(sent) :]
        logger.warning(
            "%s: streamed %s.%s differs from its final value",
            self.name,
            listen.predictor,
            listen.field,
        )
        return ""


def _listen_problems(listen: Sequence[Listen], predictors: Mapping[str, Any]) -> list[str]:
    """Why a listener cannot attach to the module's predictors (a Custom module's are known
    only now): each message lists what the module has, so the spec can be fixed."""
    names = ", ".join(predictors) or "none"
    problems = []
    for item in listen:
        predictor = predictors.get(item.predictor)
        if predictor is None:
            problems.append(
                f"no predictor named {item.predictor!r} for the listener of {item.field!r}; "
                f"the module's predictors are: {names}"
            )
        elif item.field not in predictor.signature.output_fields:
            outputs = ", ".join(predictor.signature.output_fields)
            problems.append(
                f"predictor {item.predictor!r} does not output {item.field!r} "
                f"(its outputs are: {outputs})"
            )
    return problems


def load_state(module: dspy.Module, path: Path) -> None:
    """Load JSON saved by ``program.save()`` into a Custom module, checked first.

    The generator cannot know a custom module's predictors, so the check that a
    saved state fits them happens here, at start-up: every predictor of the
    module must have a saved signature with as many fields as its own (DSPy
    pairs them by position and would ignore a mismatch), and the file must hold
    no predictor the module lacks.
    """
    data = json.loads(path.read_bytes())
    predictors = dict(module.named_predictors())
    saved = sorted(k for k, v in data.items() if isinstance(v, dict) and "signature" in v)
    held = ", ".join(saved) or "no predictor state"
    expected = ", ".join(predictors) or "none"
    if set(saved) != set(predictors):
        raise ValueError(
            f"{path.name} was saved from another module: it holds {held}, "
            f"but this module's predictors are {expected}"
        )
    for name, predictor in predictors.items():
        fields = data[name]["signature"].get("fields")
        own = [*predictor.signature.input_fields, *predictor.signature.output_fields]
        if not isinstance(fields, list) or len(fields) != len(own):
            count = len(fields) if isinstance(fields, list) else "no"
            raise ValueError(
                f"{path.name}: predictor {name!r} was saved with {count} fields, but this "
                f"module's has {len(own)} ({', '.join(own)}); was it saved from another signature?"
            )
    module.load(path)
