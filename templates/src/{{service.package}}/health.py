"""Liveness: cheap, and true whenever the process can answer HTTP."""

from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness check")
async def read_health() -> dict[str, str]:
    return {"status": "ok"}
