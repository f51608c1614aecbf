"""Status messages: the spec's templates, filled in from DSPy's callbacks.

One :class:`StatusReporter` belongs to one request. DSPy calls it on the event
loop's thread (the program runs natively async), so it puts messages straight
into the run's stream instead of DSPy's default, which hands every message to a
new thread and event loop (note 1).

Notes:
1. ``StatusStreamingCallback`` is subclassed only so that ``streamify`` does not
   add its default one; none of its behaviour is used.
"""

import asyncio
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from dspy.dsp.utils.settings import settings
from dspy.streaming.messages import StatusMessage, StatusStreamingCallback

OUTPUT_PREVIEW = 200  # characters of a tool's output shown in {output}


@dataclass
class Status(StatusMessage):
    """A status message with what produced it, so events can say so."""

    hook: str
    tool: str | None
    call_id: str


class StatusReporter(StatusStreamingCallback):
    """Renders one program's status templates for one run."""

    def __init__(self, program: str, templates: Mapping[str, str | None]) -> None:
        super().__init__()
        self._program = program
        self._templates = templates
        self._names: dict[str, str] = {}  # call_id -> tool, model or module name
        self._pending: set[asyncio.Task[None]] = set()

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
        output = f"error: {exception}" if exception is not None else str(outputs)
        self._emit("tool_end", call_id, tool=tool, output=output[:OUTPUT_PREVIEW])

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self._names[call_id] = getattr(instance, "model", type(instance).__name__)
        self._emit("lm_start", call_id, model=self._names[call_id])

    def on_lm_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        self._emit("lm_end", call_id, model=self._names.pop(call_id, ""))

    def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self._names[call_id] = type(instance).__name__
        self._emit("module_start", call_id, module=self._names[call_id])

    def on_module_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        self._emit("module_end", call_id, module=self._names.pop(call_id, ""))

    def _emit(self, hook: str, call_id: str, **values: str) -> None:
        template = self._templates.get(hook)
        stream = settings.send_stream
        if template is None or stream is None:
            return
        message = template.format_map({"program": self._program, **values})
        status = Status(message, hook=hook, tool=values.get("tool"), call_id=call_id)
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
