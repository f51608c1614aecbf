"""HTTP routes: per program, a JSON, a streaming (SSE) and a batch endpoint."""

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel

from .programs import Programs
from .runtime.catalog import ProgramInfo, program_info
from .runtime.http import ERROR_RESPONSES, STREAM_RESPONSE
from .runtime.runs import Runs
from .schemas import (
    QaBatchRequest,
    QaBatchResponse,
    QaBatchResult,
    QaRequest,
    QaResponse,
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
    "/v1/qa/stream": QaResponse,
}


@router.get("/programs", summary="List the programs")
async def list_programs(request: Request, programs: ProgramsDep) -> list[ProgramInfo]:
    protocols = request.app.state.protocols
    return [
        program_info(
            programs.qa,
            QaRequest,
            QaResponse,
            protocols,
        ),
    ]


@router.post(
    "/qa",
    summary="Run qa",
    description="Answer a question, reasoning step by step first.",
)
async def run_qa(
    body: QaRequest,
    request: Request,
    programs: ProgramsDep,
    runs: RunsDep,
) -> QaResponse:
    prediction = await runs.predict(programs.qa, body, request.receive)
    return QaResponse.from_prediction(prediction)


@router.post(
    "/qa/stream",
    summary="Stream qa",
    description="Answer a question, reasoning step by step first.",
    responses=STREAM_RESPONSE,
)
async def stream_qa(
    body: QaRequest,
    programs: ProgramsDep,
    runs: RunsDep,
    last_event_id: LastEventId = None,
) -> Response:
    return await runs.stream(
        programs.qa,
        body,
        QaResponse.from_prediction,
        last_event_id,
    )


@router.post("/qa/batch", summary="Run qa on many inputs")
async def batch_qa(
    body: QaBatchRequest,
    request: Request,
    programs: ProgramsDep,
    runs: RunsDep,
) -> QaBatchResponse:
    results = await runs.batch(
        programs.qa,
        body.inputs,
        QaResponse.from_prediction,
        QaBatchResult,
        request.receive,
    )
    return QaBatchResponse(results=results)
