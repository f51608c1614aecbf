"""The routes of runs by id: their state, their events from any position, their cancel.

They serve every program's streamed runs, on any replica when the runs' log is
in Redis: a client that lost its stream rejoins it here (or by re-sending its
request with ``Last-Event-ID``), and any client with the run's id, the same
caller's when API keys are on, can read or stop it.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from .errors import RunFailed
from .http import ERROR_RESPONSES, STREAM_RESPONSE
from .runlog import RunRecord, RunStatus
from .runs import BAD_EVENT_ID, Runs, parse_event_id

router = APIRouter(prefix="/v1/runs", tags=["runs"], responses=ERROR_RESPONSES)

RunId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The run's id (X-Run-ID).")]


class RunError(BaseModel):
    code: str
    message: str


class RunInfo(BaseModel):
    """A run's state, and its result or error once it has ended."""

    run_id: str
    program: str
    status: RunStatus
    events: int = Field(description="Events logged so far; the last one's position.")
    result: dict[str, Any] | None = Field(None, description="The outputs, once done.")
    error: RunError | None = Field(None, description="Why it failed, once failed.")

    @classmethod
    def of(cls, record: RunRecord) -> "RunInfo":
        error = RunError(**record.error) if record.error else None
        return cls(
            run_id=record.run_id,
            program=record.program,
            status=record.status,
            events=record.events,
            result=record.result,
            error=error,
        )


def _runs(request: Request) -> Runs:
    return request.app.state.runs


@router.get("/{run_id}", summary="A run's state and result")
async def read_run(run_id: RunId, request: Request) -> RunInfo:
    return RunInfo.of(await _runs(request).record(run_id))


@router.get(
    "/{run_id}/events", summary="A run's events, from a position", responses=STREAM_RESPONSE
)
async def read_run_events(
    run_id: RunId,
    request: Request,
    after: Annotated[
        int | None, Query(ge=0, description="Send the events after this position.")
    ] = None,
    last_event_id: Annotated[
        str | None, Header(description="The last event id received: '<run>-<n>', or n.")
    ] = None,
) -> Response:
    """The run's events after ``after`` (or ``Last-Event-ID``), then those to come, as SSE."""
    position = after or 0
    if after is None and last_event_id:
        named = parse_event_id(last_event_id)
        if named is not None and named[0] == run_id:
            position = named[1]
        elif last_event_id.strip().isdigit():
            position = int(last_event_id.strip())
        else:
            raise RunFailed(BAD_EVENT_ID)
    return await _runs(request).join(run_id, position)


@router.post("/{run_id}/cancel", summary="Cancel a run")
async def cancel_run(run_id: RunId, request: Request) -> RunInfo:
    """Stop the run now, on whichever replica runs it; its stream ends with ``cancelled``."""
    return RunInfo.of(await _runs(request).cancel(run_id))


@router.delete("/{run_id}", summary="Cancel a run")
async def delete_run(run_id: RunId, request: Request) -> RunInfo:
    """The same as ``POST /v1/runs/{run_id}/cancel``."""
    return RunInfo.of(await _runs(request).cancel(run_id))
