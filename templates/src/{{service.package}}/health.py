"""Liveness, readiness and metrics: the endpoints a load balancer and Prometheus read."""

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness check")
async def read_health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness check",
    responses={503: {"description": "Not ready: an LM lacks its key, Redis is down, or draining."}},
)
async def read_readiness(request: Request) -> JSONResponse:
    """Ready when every program is built, its saved state loaded and its LM configured,
    and the runs' store (Redis, when REDIS_URL is set) answers."""
    programs = request.app.state.programs
    report: dict[str, Any] = {}
    for name, program in vars(programs).items():
        report[name] = {
            "built": True,
            "state": program.state,
            "predictors": list(program.predictors),
            "lm_configured": program.lm_configured,
        }
    runs = request.app.state.runs
    store = await runs.log.ready()
    ready = all(entry["lm_configured"] for entry in report.values()) and store
    draining = runs.draining
    body = {
        "ready": ready and not draining,
        "draining": draining,
        "run_store": store,
        "programs": report,
    }
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def read_metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
