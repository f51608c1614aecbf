"""HTTP routes: per program, a JSON, a streaming (SSE) and a batch endpoint."""

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel

from .programs import Programs
from .runtime.catalog import ProgramInfo, program_info
from .runtime.http import ERROR_RESPONSES, STREAM_RESPONSE
from .runtime.runs import Runs
from .schemas import (
    GlossaryBatchRequest,
    GlossaryBatchResponse,
    GlossaryBatchResult,
    GlossaryRequest,
    GlossaryResponse,
    HeadlineBatchRequest,
    HeadlineBatchResponse,
    HeadlineBatchResult,
    HeadlineRequest,
    HeadlineResponse,
    ProfileBatchRequest,
    ProfileBatchResponse,
    ProfileBatchResult,
    ProfileRequest,
    ProfileResponse,
    SentimentBatchRequest,
    SentimentBatchResponse,
    SentimentBatchResult,
    SentimentRequest,
    SentimentResponse,
    TranslateBatchRequest,
    TranslateBatchResponse,
    TranslateBatchResult,
    TranslateRequest,
    TranslateResponse,
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
    "/v1/profile/stream": ProfileResponse,
    "/v1/translate/stream": TranslateResponse,
    "/v1/sentiment/stream": SentimentResponse,
    "/v1/headline/stream": HeadlineResponse,
    "/v1/glossary/stream": GlossaryResponse,
}


@router.get("/programs", summary="List the programs")
async def list_programs(request: Request, programs: ProgramsDep) -> list[ProgramInfo]:
    protocols = request.app.state.protocols
    return [
        program_info(
            programs.profile,
            ProfileRequest,
            ProfileResponse,
            protocols,
        ),
        program_info(
            programs.translate,
            TranslateRequest,
            TranslateResponse,
            protocols,
        ),
        program_info(
            programs.sentiment,
            SentimentRequest,
            SentimentResponse,
            protocols,
        ),
        program_info(
            programs.headline,
            HeadlineRequest,
            HeadlineResponse,
            protocols,
        ),
        program_info(
            programs.glossary,
            GlossaryRequest,
            GlossaryResponse,
            protocols,
        ),
    ]


@router.post(
    "/profile",
    summary="Run profile",
    description="Profile a text.",
)
async def run_profile(
    body: ProfileRequest,
    request: Request,
    programs: ProgramsDep,
    runs: RunsDep,
) -> ProfileResponse:
    prediction = await runs.predict(programs.profile, body, request.receive)
    return ProfileResponse.from_prediction(prediction)


@router.post(
    "/profile/stream",
    summary="Stream profile",
    description="Profile a text.",
    responses=STREAM_RESPONSE,
)
async def stream_profile(
    body: ProfileRequest,
    programs: ProgramsDep,
    runs: RunsDep,
    last_event_id: LastEventId = None,
) -> Response:
    return await runs.stream(
        programs.profile,
        body,
        ProfileResponse.from_prediction,
        last_event_id,
    )


@router.post("/profile/batch", summary="Run profile on many inputs")
async def batch_profile(
    body: ProfileBatchRequest,
    request: Request,
    programs: ProgramsDep,
    runs: RunsDep,
) -> ProfileBatchResponse:
    results = await runs.batch(
        programs.profile,
        body.inputs,
        ProfileResponse.from_prediction,
        ProfileBatchResult,
        request.receive,
    )
    return ProfileBatchResponse(results=results)


@router.post(
    "/translate",
    summary="Run translate",
    description="Run the translate program.",
)
async def run_translate(
    body: TranslateRequest,
    request: Request,
    programs: ProgramsDep,
    runs: RunsDep,
) -> TranslateResponse:
    prediction = await runs.predict(programs.translate, body, request.receive)
    return TranslateResponse.from_prediction(prediction)


@router.post(
    "/translate/stream",
    summary="Stream translate",
    description="Run the translate program.",
    responses=STREAM_RESPONSE,
)
async def stream_translate(
    body: TranslateRequest,
    programs: ProgramsDep,
    runs: RunsDep,
    last_event_id: LastEventId = None,
) -> Response:
    return await runs.stream(
        programs.translate,
        body,
        TranslateResponse.from_prediction,
        last_event_id,
    )


@router.post("/translate/batch", summary="Run translate on many inputs")
async def batch_translate(
    body: TranslateBatchRequest,
    request: Request,
    programs: ProgramsDep,
    runs: RunsDep,
) -> TranslateBatchResponse:
    results = await runs.batch(
        programs.translate,
        body.inputs,
        TranslateResponse.from_prediction,
        TranslateBatchResult,
        request.receive,
    )
    return TranslateBatchResponse(results=results)


@router.post(
    "/sentiment",
    summary="Run sentiment",
    description="Run the sentiment program.",
)
async def run_sentiment(
    body: SentimentRequest,
    request: Request,
    programs: ProgramsDep,
    runs: RunsDep,
) -> SentimentResponse:
    prediction = await runs.predict(programs.sentiment, body, request.receive)
    return SentimentResponse.from_prediction(prediction)


@router.post(
    "/sentiment/stream",
    summary="Stream sentiment",
    description="Run the sentiment program.",
    responses=STREAM_RESPONSE,
)
async def stream_sentiment(
    body: SentimentRequest,
    programs: ProgramsDep,
    runs: RunsDep,
    last_event_id: LastEventId = None,
) -> Response:
    return await runs.stream(
        programs.sentiment,
        body,
        SentimentResponse.from_prediction,
        last_event_id,
    )


@router.post("/sentiment/batch", summary="Run sentiment on many inputs")
async def batch_sentiment(
    body: SentimentBatchRequest,
    request: Request,
    programs: ProgramsDep,
    runs: RunsDep,
) -> SentimentBatchResponse:
    results = await runs.batch(
        programs.sentiment,
        body.inputs,
        SentimentResponse.from_prediction,
        SentimentBatchResult,
        request.receive,
    )
    return SentimentBatchResponse(results=results)


@router.post(
    "/headline",
    summary="Run headline",
    description="Write a headline for the text, the best of up to three attempts.",
)
async def run_headline(
    body: HeadlineRequest,
    request: Request,
    programs: ProgramsDep,
    runs: RunsDep,
) -> HeadlineResponse:
    prediction = await runs.predict(programs.headline, body, request.receive)
    return HeadlineResponse.from_prediction(prediction)


@router.post(
    "/headline/stream",
    summary="Stream headline",
    description="Write a headline for the text, the best of up to three attempts.",
    responses=STREAM_RESPONSE,
)
async def stream_headline(
    body: HeadlineRequest,
    programs: ProgramsDep,
    runs: RunsDep,
    last_event_id: LastEventId = None,
) -> Response:
    return await runs.stream(
        programs.headline,
        body,
        HeadlineResponse.from_prediction,
        last_event_id,
    )


@router.post("/headline/batch", summary="Run headline on many inputs")
async def batch_headline(
    body: HeadlineBatchRequest,
    request: Request,
    programs: ProgramsDep,
    runs: RunsDep,
) -> HeadlineBatchResponse:
    results = await runs.batch(
        programs.headline,
        body.inputs,
        HeadlineResponse.from_prediction,
        HeadlineBatchResult,
        request.receive,
    )
    return HeadlineBatchResponse(results=results)


@router.post(
    "/glossary",
    summary="Run glossary",
    description="Run the glossary program.",
)
async def run_glossary(
    body: GlossaryRequest,
    request: Request,
    programs: ProgramsDep,
    runs: RunsDep,
) -> GlossaryResponse:
    prediction = await runs.predict(programs.glossary, body, request.receive)
    return GlossaryResponse.from_prediction(prediction)


@router.post(
    "/glossary/stream",
    summary="Stream glossary",
    description="Run the glossary program.",
    responses=STREAM_RESPONSE,
)
async def stream_glossary(
    body: GlossaryRequest,
    programs: ProgramsDep,
    runs: RunsDep,
    last_event_id: LastEventId = None,
) -> Response:
    return await runs.stream(
        programs.glossary,
        body,
        GlossaryResponse.from_prediction,
        last_event_id,
    )


@router.post("/glossary/batch", summary="Run glossary on many inputs")
async def batch_glossary(
    body: GlossaryBatchRequest,
    request: Request,
    programs: ProgramsDep,
    runs: RunsDep,
) -> GlossaryBatchResponse:
    results = await runs.batch(
        programs.glossary,
        body.inputs,
        GlossaryResponse.from_prediction,
        GlossaryBatchResult,
        request.receive,
    )
    return GlossaryBatchResponse(results=results)
