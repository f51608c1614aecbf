"""The spec's ``server`` section: the defaults of the generated service's settings.

Each field's default, bounds and description come from the template's settings
declaration (``templates/_settings.yml``, read by :mod:`.settings`); the types
here are the spec's own, stricter ones (an origin, a header name, a URL path).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import SpecModel, matching
from .settings import spec_field

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "*"]
Origin = matching(
    r"^(\*|https?://[A-Za-z0-9.\-\[\]:]+)$",
    "'*' or an origin such as 'https://app.example.com'",
    300,
)
HeaderName = matching(
    r"^(\*|[A-Za-z0-9-]{1,64})$", "'*' or an HTTP header name such as 'X-API-Key'", 64
)
# Characters of a URL only: a Redis URL reaches the README's table and .env.example as it is.
RedisUrl = matching(
    r"^(redis|rediss|unix)://[A-Za-z0-9_.~:/?#\[\]@!$&()*+,;=%-]{1,500}$",
    "a Redis URL such as 'redis://redis:6379/0'",
    510,
)
UrlPath = matching(r"^/[A-Za-z0-9_./-]{0,200}$", "a URL path such as '/healthz'", 201)


class AuthSpec(SpecModel):
    """API keys: the keys themselves come from the API_KEYS environment variable."""

    required: bool = spec_field("auth.required")
    open_paths: list[UrlPath] = spec_field("auth.open_paths")


class CorsSpec(SpecModel):
    """Cross-origin requests from browsers; closed unless origins are listed."""

    origins: list[Origin] = spec_field("cors.origins")
    methods: list[HttpMethod] = spec_field("cors.methods")
    headers: list[HeaderName] = spec_field("cors.headers")


class ProtocolsSpec(SpecModel):
    """The client protocols the service speaks besides its own; each one on by default."""

    openai: bool = spec_field("protocols.openai")
    ai_sdk: bool = spec_field("protocols.ai_sdk")
    mcp: bool = spec_field("protocols.mcp")
    agui: bool = spec_field("protocols.agui")


class ServerSpec(SpecModel):
    """Defaults of the generated service's settings; each one is overridable by env var.

    Defaults, bounds and descriptions come from the template's settings
    declaration (``templates/_settings.yml``); the types here are the spec's own.
    """

    auth: AuthSpec = Field(default_factory=AuthSpec, description="API keys.")
    cors: CorsSpec = Field(default_factory=CorsSpec, description="CORS.")
    protocols: ProtocolsSpec = Field(
        default_factory=ProtocolsSpec, description="Client protocols (OpenAI, AI SDK, MCP, AG-UI)."
    )
    max_body_bytes: int = spec_field("max_body_bytes")
    max_input_chars: int = spec_field("max_input_chars")
    max_concurrent_runs: int = spec_field("max_concurrent_runs")
    run_deadline: float | None = spec_field("run_deadline")
    idle_timeout: float | None = spec_field("idle_timeout")
    batch_parallelism: int = spec_field("batch_parallelism")
    batch_max_items: int = spec_field("batch_max_items")
    log_format: Literal["json", "text"] = spec_field("log_format")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = spec_field("log_level")
    redis_url: RedisUrl | None = spec_field("redis_url")
    port: int = spec_field("port")
    workers: int = spec_field("workers")
    playground: bool = spec_field("playground")
