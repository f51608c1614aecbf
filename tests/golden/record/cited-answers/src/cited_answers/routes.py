"""HTTP routes: per program, a JSON, a streaming (SSE) and a batch endpoint."""

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel

from .programs import Programs
from .runtime.catalog import ProgramInfo, program_info
from .runtime.http import ERROR_RESPONSES, STREAM_RESPONSE
from .runtime.runs import Runs
from .schemas import (
    CitedBatchRequest,
    CitedBatchResponse,
    CitedBatchResult,
    CitedRequest,
    CitedResponse,
)

router = APIRouter(prefix="/v1", tags=["programs"], responses=ERROR_RESPONSES)


# Async, though they do not await: FastAPI runs a sync dependency in its thread
# pool, which costs more than the lookup itself on every request.
async def get_programs(request: Request) -> Programs:
    """The programs built at start-up."""
    return request.app.state.programs


async def get_runs(request: Request) -> Runs:
    """Admission and limits of every run."""
    return request.app.state.runs


ProgramsDep = Annotated[Programs, Depends(get_programs)]
RunsDep = Annotated[Runs, Depends(get_runs)]
# Sent by a client that reconnects: the stream continues that run after that event.
LastEventId = Annotated[
    str | None,
    Header(description="Resume: the id of the last event received, '<run>-<n>'."),
]

# The outputs each stream's prediction event carries, for the OpenAPI document.
STREAMS: dict[str, type[BaseModel]] = {
    "/v1/cited/stream": CitedResponse,
}


@router.get("/programs", summary="List the programs")
async def list_programs(request: Request, programs: ProgramsDep) -> list[ProgramInfo]:
    protocols = request.app.state.protocols
    return [
        program_info(
            programs.cited,
            CitedRequest,
            CitedResponse,
            protocols,
        ),
    ]


@router.post(
    "/cited",
    summary="Run cited",
    description="Retrieve passages for the question, then answer it citing them.",
)
async def run_cited(
    body: CitedRequest,
    request: Request,
    programs: ProgramsDep,
    runs: RunsDep,
) -> CitedResponse:
    prediction = await runs.predict(programs.cited, body, request.receive)
    return CitedResponse.from_prediction(prediction)


@router.post(
    "/cited/stream",
    summary="Stream cited",
    description="Retrieve passages for the question, then answer it citing them.",
    responses=STREAM_RESPONSE,
)
async def stream_cited(
    body: CitedRequest,
    programs: ProgramsDep,
    runs: RunsDep,
    last_event_id: LastEventId = None,
) -> Response:
    return await runs.stream(
        programs.cited,
        body,
        CitedResponse.from_prediction,
        last_event_id,
    )


@router.post("/cited/batch", summary="Run cited on many inputs")
async def batch_cited(
    body: CitedBatchRequest,
    request: Request,
    programs: ProgramsDep,
    runs: RunsDep,
) -> CitedBatchResponse:
    results = await runs.batch(
        programs.cited,
        body.inputs,
        CitedResponse.from_prediction,
        CitedBatchResult,
        request.receive,
    )
    return CitedBatchResponse(results=results)
