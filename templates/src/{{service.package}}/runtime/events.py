"""The stream's event payloads: the wire protocol of every `/stream` endpoint.

Each model is one SSE event type, named by its ``event`` class variable. The
protocol is documented in docs/protocol.md; change both together.
"""

from typing import Any, ClassVar

from pydantic import BaseModel, Field

from .logs import current_request_id, current_run_id

Hook = str  # tool_start | tool_end | tool_error | lm_start | lm_end | lm_error | module_*


class EventData(BaseModel):
    """What every event carries: the ids of its run and of the request that started it."""

    run_id: str = Field(default_factory=current_run_id)
    request_id: str = Field(default_factory=current_request_id)


class StatusEvent(EventData):
    """Progress: a tool, an LM call or a module started or ended."""

    event: ClassVar[str] = "status"
    message: str
    hook: Hook
    tool: str | None = Field(None, description="The tool's name, for tool hooks.")
    call_id: str = Field(description="Pairs a *_start event with its *_end event.")
    args: str | None = Field(None, description="tool_start: the tool's arguments, as JSON.")
    output: str | None = Field(
        None, description="tool_end: the tool's output, its first 200 characters."
    )


class TokenEvent(EventData):
    """A piece of a streamed output field; a field's chunks concatenate to its value."""

    event: ClassVar[str] = "token"
    predictor: str
    field: str
    chunk: str


class PredictionEvent(EventData):
    """The program's final outputs, exactly as the JSON endpoint returns them."""

    event: ClassVar[str] = "prediction"
    outputs: dict[str, Any]


class ErrorEvent(EventData):
    """The run failed; no prediction follows and the stream ends."""

    event: ClassVar[str] = "error"
    code: str
    message: str


class DoneEvent(EventData):
    """The run finished and every event was sent."""

    event: ClassVar[str] = "done"


Event = StatusEvent | TokenEvent | PredictionEvent | ErrorEvent | DoneEvent

EVENTS: dict[str, type[Event]] = {
    kind.event: kind for kind in (StatusEvent, TokenEvent, PredictionEvent, ErrorEvent, DoneEvent)
}


def decode(event: str, data: str) -> Event:
    """A logged event (its name and JSON data) as the model it was written from."""
    return EVENTS[event].model_validate_json(data)
