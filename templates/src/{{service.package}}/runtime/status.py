"""Status messages: the spec's templates, filled in from DSPy's callbacks.

One :class:`StatusReporter` belongs to one request. DSPy calls it on the event
loop's thread (the program runs natively async), so it puts messages straight
into the run's stream instead of DSPy's default, which hands every message to a
new thread and event loop (note 1). A message says what happened:

- module hooks fire for the program's own module, not for the modules it is
  built of (ChainOfThought's inner Predict, ReAct's two predictors), unless the
  spec says ``status_modules: all``;
- every LM call gets its start and its end, whether a listener watches its
  predictor or not (note 2); a call that fails ends with ``lm_error``, whose
  ``{error}`` is the failure's code (``upstream_auth``, ``timeout``, ...);
- a tool that raises ends with ``tool_error`` (``{error}`` is the exception's
  type), never ``tool_end``, and its traceback goes to the server log.

Notes:
1. ``StatusStreamingCallback`` is subclassed only so that ``streamify`` does not
   add its default one; none of its behaviour is used.
2. DSPy runs a predictor that no listener watches with ``send_stream`` unset, so
   the reporter keeps the run's stream from the first callback (the program's
   own module starting), instead of reading it at each message.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from dspy.dsp.utils.settings import settings
from dspy.streaming.messages import StatusMessage, StatusStreamingCallback
from dspy.utils.callback import BaseCallback

from .errors import describe

logger = logging.getLogger(__name__)

OUTPUT_PREVIEW = 200  # characters of a tool's output shown in {output}


@dataclass
class Status(StatusMessage):
    """A status message with what produced it, so events can say so."""

    hook: str
    tool: str | None
    call_id: str
    args: str | None = None  # tool_start: the tool's arguments, as a JSON object
    output: str | None = None  # tool_end: the start of the tool's output


class StatusReporter(StatusStreamingCallback):
    """Renders one program's status templates for one run."""

    def __init__(
        self,
        program: str,
        module: Any,
        templates: Mapping[str, str | None],
        lm_calls: BaseCallback | None = None,
    ) -> None:
        super().__init__()
        self._lm_calls = lm_calls  # told of every LM call too (metrics.run_context says why)
        self._program = program
        self._module = module  # its parts get no module hooks; None: every module gets them
        self._templates = templates
        self._names: dict[str, str] = {}  # call_id -> tool, model or module name
        self._pending: set[asyncio.Task[None]] = set()
        self._stream: Any = None  # the run's stream, kept from the first callback (note 2)

    def on_tool_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        if instance.name == "finish":  # ReAct's own way to stop, not a user tool
            return
        self._names[call_id] = instance.name
        args = json.dumps(inputs.get("kwargs", {}), ensure_ascii=False, default=str)
        self._emit("tool_start", call_id, tool=instance.name, args=args)

    def on_tool_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        tool = self._names.pop(call_id, None)
        if tool is None:
            return
        if exception is not None:
            logger.error("%s: tool %s failed", self._program, tool, exc_info=exception)
            self._emit("tool_error", call_id, tool=tool, error=type(exception).__name__)
            return
        self._emit("tool_end", call_id, tool=tool, output=str(outputs)[:OUTPUT_PREVIEW])

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        if self._lm_calls is not None:
            self._lm_calls.on_lm_start(call_id, instance, inputs)
        self._names[call_id] = getattr(instance, "model", type(instance).__name__)
        self._emit("lm_start", call_id, model=self._names[call_id])

    def on_lm_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        if self._lm_calls is not None:
            self._lm_calls.on_lm_end(call_id, outputs, exception)
        model = self._names.pop(call_id, "")
        if exception is not None:
            self._emit("lm_error", call_id, model=model, error=describe(exception).code)
            return
        self._emit("lm_end", call_id, model=model)

    def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        if self._stream is None:
            self._stream = settings.send_stream
        if self._module is not None and instance is not self._module:
            return
        self._names[call_id] = type(instance).__name__
        self._emit("module_start", call_id, module=self._names[call_id])

    def on_module_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        module = self._names.pop(call_id, None)
        if module is not None:
            self._emit("module_end", call_id, module=module)

    def _emit(self, hook: str, call_id: str, **values: str) -> None:
        template = self._templates.get(hook)
        stream = self._stream or settings.send_stream
        if template is None or stream is None:
            return
        message = template.format_map({"program": self._program, **values})
        status = Status(
            message,
            hook=hook,
            tool=values.get("tool"),
            call_id=call_id,
            args=values.get("args") if hook == "tool_start" else None,
            output=values.get("output") if hook == "tool_end" else None,
        )
        try:
            stream.send_nowait(status)
        except anyio.WouldBlock:
            # The reader is behind: queue the message behind the run's own sends.
            task = asyncio.get_running_loop().create_task(self._send_later(stream, status))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # the run is over; nobody is listening any more

    @staticmethod
    async def _send_later(stream: Any, status: Status) -> None:
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            await stream.send(status)
