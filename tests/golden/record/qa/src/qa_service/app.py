"""The application factory: settings in, a FastAPI app with every program out."""

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import dspy
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from . import __version__, health, routes
from .chat import chat_programs
from .programs import build_programs
from .runtime import playground, run_routes, tracing
from .runtime.body import BodySizeLimit
from .runtime.http import RequestBoundary, add_error_handlers
from .runtime.logs import configure_logging
from .runtime.metrics import Metrics
from .runtime.openapi import install_openapi
from .runtime.protocols import enabled_protocols
from .runtime.runs import Runs
from .runtime.security import ApiKeyMiddleware
from .settings import Settings, get_settings

logger = logging.getLogger(__name__)

# The API documentation: its pages and its assets, open when DOCS_PUBLIC is true.
DOCS_PAGES = ["/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"]
DOCS_ASSETS = "/static-offline-docs/"


def create_app(settings: Settings | None = None, *, lm: dspy.BaseLM | None = None) -> FastAPI:
    """Build the app; ``lm``, when given, replaces every program's LM (tests, embedding)."""
    settings = settings or get_settings()
    open_paths = [*settings.open_paths, *(DOCS_PAGES if settings.docs_public else [])]
    open_prefixes = [DOCS_ASSETS] if settings.docs_public else []
    if settings.playground:  # the page loads without a key; its API calls carry one
        open_paths.append(playground.PATH)
        open_prefixes.append(playground.ASSETS)
    configure_logging(settings.log_format, settings.log_level)
    for warning in settings.warnings():
        logger.warning("%s", warning)
    # Tracing, only if the OTEL_* variables ask for it (runtime/tracing.py); off, it costs nothing.
    tracing.start(__package__ or __name__, __version__)
    metrics = Metrics()
    # With API keys, a run is read and cancelled only with the key that started it.
    scoped = bool(settings.api_keys)
    runs = Runs(settings.run_limits(), metrics, settings.run_log(), scoped=scoped)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runs.start()
        runs.drain_on_signals()
        async with AsyncExitStack() as protocols:
            for protocol in app.state.protocols:
                if protocol.lifespan is not None:
                    await protocols.enter_async_context(protocol.lifespan(app))
            yield
            await runs.drain()
        await runs.close()
        tracing.shutdown()  # flush the spans still batched

    # FastAPIOffline serves Swagger UI and ReDoc from the package, not from a CDN.
    app = FastAPIOffline(
        title="Q&A Service",
        description="Answers questions with short, reasoned answers.",
        version=__version__,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.programs = build_programs(settings, lm)
    app.state.runs = runs
    app.state.metrics = metrics
    add_error_handlers(app)
    app.include_router(health.router)
    app.include_router(routes.router)
    app.include_router(run_routes.router)
    # The other client protocols, each on unless its PROTOCOL_<NAME> setting is false.
    app.state.chat = chat_programs(app.state.programs)
    app.state.protocols = enabled_protocols(settings)
    for protocol in app.state.protocols:
        protocol.install(app)
    if settings.playground:
        app.include_router(playground.router)
    install_openapi(
        app, keys=bool(settings.api_keys), open_paths=open_paths, streams=routes.STREAMS
    )
    if settings.debug_stats:

        @app.get("/_debug/stats", include_in_schema=False)
        async def read_debug_stats() -> dict[str, int]:
            return {
                "tasks": len(asyncio.all_tasks()),
                "active_runs": runs.active,
                "threads": threading.active_count(),
                **runs.log.stats(),
            }

    # Added innermost first. A request meets, in order: its request id, CORS (so a
    # browser's preflight needs no key), the API key check, then the body size cap.
    app.add_middleware(
        BodySizeLimit, max_bytes=settings.max_body_bytes, timeout=settings.body_timeout
    )
    app.add_middleware(
        ApiKeyMiddleware,
        keys=[key.get_secret_value() for key in settings.api_keys],
        open_paths=open_paths,
        open_prefixes=open_prefixes,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=settings.cors_methods,
            allow_headers=settings.cors_headers,
            expose_headers=["X-Request-ID", "X-Run-ID"],
        )
    app.add_middleware(RequestBoundary, access_log=settings.access_log)
    return app
