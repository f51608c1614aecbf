"""HTTP routes: per program, a JSON, a streaming (SSE) and a batch endpoint."""

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel

from .programs import Programs
from .runtime.catalog import ProgramInfo, program_info
from .runtime.http import ERROR_RESPONSES, STREAM_RESPONSE
from .runtime.runs import Runs
from .schemas import (
    AgentBatchRequest,
    AgentBatchResponse,
    AgentBatchResult,
    AgentRequest,
    AgentResponse,
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
    "/v1/agent/stream": AgentResponse,
}


@router.get("/programs", summary="List the programs")
async def list_programs(request: Request, programs: ProgramsDep) -> list[ProgramInfo]:
    protocols = request.app.state.protocols
    return [
        program_info(
            programs.agent,
            AgentRequest,
            AgentResponse,
            protocols,
        ),
    ]


@router.post(
    "/agent",
    summary="Run agent",
    description="Answer a question, searching as needed and streaming each thought.",
)
async def run_agent(
    body: AgentRequest,
    request: Request,
    programs: ProgramsDep,
    runs: RunsDep,
) -> AgentResponse:
    prediction = await runs.predict(programs.agent, body, request.receive)
    return AgentResponse.from_prediction(prediction)


@router.post(
    "/agent/stream",
    summary="Stream agent",
    description="Answer a question, searching as needed and streaming each thought.",
    responses=STREAM_RESPONSE,
)
async def stream_agent(
    body: AgentRequest,
    programs: ProgramsDep,
    runs: RunsDep,
    last_event_id: LastEventId = None,
) -> Response:
    return await runs.stream(
        programs.agent,
        body,
        AgentResponse.from_prediction,
        last_event_id,
    )


@router.post("/agent/batch", summary="Run agent on many inputs")
async def batch_agent(
    body: AgentBatchRequest,
    request: Request,
    programs: ProgramsDep,
    runs: RunsDep,
) -> AgentBatchResponse:
    results = await runs.batch(
        programs.agent,
        body.inputs,
        AgentResponse.from_prediction,
        AgentBatchResult,
        request.receive,
    )
    return AgentBatchResponse(results=results)
