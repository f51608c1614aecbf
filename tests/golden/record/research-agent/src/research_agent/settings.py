"""Run-time settings, read from the environment and a ``.env`` file."""

from functools import lru_cache
from typing import Annotated, Any, Literal, Self

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .runtime.limits import RunLimits
from .runtime.lm import LMOverrides
from .runtime.runlog import RunLog


class Settings(BaseSettings):
    """Settings of the service; every one can be set as an environment variable."""

    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore")

    # The LM
    lm_model: str | None = Field(
        None,
        description="LiteLLM model string that replaces the spec's model (for every program that "
        "does not set its own LM).",
    )
    lm_api_base: str | None = Field(
        None,
        description="Base URL of the LM's API.",
    )
    lm_api_key: SecretStr | None = Field(
        None,
        description="API key of the LM.",
    )
    lm_timeout: float | None = Field(
        None,
        gt=0,
        description="Seconds to wait for the LM.",
    )
    lm_num_retries: int | None = Field(
        None,
        ge=0,
        description="Retries of a failed LM call (DSPy's default when unset).",
    )
    lm_max_connections: int = Field(
        1000,
        gt=0,
        le=100000,
        description="Calls in flight to the LM at once, the size of its connection pool on DSPy's "
        "native engine (DSPy's own is 100); past it, calls wait for a free "
        "connection.",
    )

    # Access
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        [],
        description="API keys; when any is set, every request needs one, as `Authorization: "
        "Bearer <key>` or `X-API-Key: <key>`.",
    )
    api_keys_required: bool = Field(
        False,
        description="Refuse to start when API_KEYS is empty (when false, keys are checked only if "
        "API_KEYS is set).",
    )
    open_paths: Annotated[list[str], NoDecode] = Field(
        ["/healthz", "/readyz"],
        description="Paths served without an API key (exact match).",
    )
    docs_public: bool = Field(
        True,
        description="Serve /docs, /redoc and /openapi.json without an API key (Swagger UI then "
        "takes the key with its Authorize button).",
    )
    playground: bool = Field(
        True,
        description="Serve the playground at /playground, a page that runs the programs in a "
        "browser (the page loads without an API key; its calls to the API need one).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        [],
        description="Origins allowed by CORS, such as https://app.example.com; with none, CORS is "
        "closed.",
    )
    cors_methods: Annotated[list[str], NoDecode] = Field(
        ["GET", "POST"],
        description="Methods allowed by CORS.",
    )
    cors_headers: Annotated[list[str], NoDecode] = Field(
        ["Authorization", "Content-Type", "Last-Event-ID", "X-API-Key", "X-Request-ID"],
        description="Request headers allowed by CORS.",
    )

    # Requests
    max_body_bytes: int = Field(
        1000000,
        gt=0,
        le=1073741824,
        description="Largest request body in bytes; larger gets 413.",
    )
    max_input_chars: int = Field(
        100000,
        gt=0,
        le=1073741824,
        description="Largest input field in characters (as JSON for non-text fields); longer gets "
        "422.",
    )
    body_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds to receive a request body; then 408.",
    )
    max_concurrent_runs: int = Field(
        100,
        gt=0,
        le=100000,
        description="Runs at once; past it, requests get 503 with Retry-After.",
    )
    max_concurrent_runs_per_key: int | None = Field(
        None,
        gt=0,
        description="Runs at once per API key (per client address with keys off); past it, 429 "
        "with Retry-After. Unset, no cap per key.",
    )
    batch_parallelism: int = Field(
        4,
        gt=0,
        le=1000,
        description="Items of one batch request run at once.",
    )
    batch_max_items: int = Field(
        100,
        gt=0,
        le=100000,
        description="Most items in one batch request.",
    )

    # Runs
    run_deadline: float | None = Field(
        300.0,
        gt=0,
        description="Seconds a whole run may take, then error `timeout` (unset, no deadline).",
    )
    idle_timeout: float | None = Field(
        60.0,
        gt=0,
        description="Seconds a run may go without an event, then error `timeout` (unset, no "
        "limit).",
    )
    run_grace: float = Field(
        30.0,
        ge=0,
        description="Seconds a streamed run goes on while no client reads it, so that a client "
        "that reconnects resumes it; then it is cancelled (0, at once).",
    )
    run_ttl: float = Field(
        300.0,
        gt=0,
        description="Seconds an ended run's events are kept, for clients that resume or read it "
        "late.",
    )
    run_log_max_events: int = Field(
        10000,
        gt=0,
        description="Events kept of one run; a resume from before the oldest one kept gets 410.",
    )
    reconnect_delay: float = Field(
        1.0,
        gt=0,
        description="Seconds a client waits before it reconnects a broken stream (the SSE retry "
        "field).",
    )
    keepalive_interval: float = Field(
        15.0,
        gt=0,
        description="Seconds of silence on a stream before a `: ping` comment.",
    )
    stream_flush_interval: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Seconds a stream waits after it sent a token before it sends what its run "
        "logged meanwhile, in one write (0, every event as soon as it is logged); a "
        "few hundredths save CPU when tokens come fast.",
    )
    shutdown_grace: float = Field(
        10.0,
        ge=0,
        description="Seconds open streams get to finish on SIGTERM.",
    )

    # Replicas
    redis_url: str | None = Field(
        None,
        description="Redis URL, such as redis://redis:6379/0, where every replica keeps runs' "
        "events and cancels; unset, runs live in this process's memory.",
    )
    redis_prefix: str = Field(
        "dspy-forge:",
        description="Prefix of every Redis key and channel, so that services can share one Redis.",
    )
    redis_max_connections: int = Field(
        256,
        gt=0,
        description="Connections to Redis at most; a reader on another replica than its run's "
        "holds one while it waits.",
    )
    run_heartbeat_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds after a replica's last heartbeat that its unfinished runs are lost "
        "(error `run_lost`).",
    )

    # Client protocols
    protocol_openai: bool = Field(
        True,
        description="Serve every program as a model of an OpenAI Chat Completions API under "
        "/openai/v1.",
    )
    protocol_ai_sdk: bool = Field(
        True,
        description="Serve every program as a Vercel AI SDK UI message stream at POST "
        "/ai-sdk/<program> (useChat).",
    )
    protocol_mcp: bool = Field(
        True,
        description="Serve every program as a tool of an MCP server at /mcp (streamable HTTP), "
        "for agent hosts.",
    )
    protocol_agui: bool = Field(
        True,
        description="Serve every program as an AG-UI agent at POST /agui/<program> (@ag-ui/client "
        "HttpAgent).",
    )

    # Logs and serving
    log_format: Literal["json", "text"] = Field(
        "json",
        description="Log lines as JSON objects or as text; API keys are never logged.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO",
        description="Lowest level logged.",
    )
    access_log: bool = Field(
        True,
        description="Log a line per request (method, path, status, milliseconds) with its request "
        "id.",
    )
    host: str = Field(
        "127.0.0.1",
        description="Interface that `python -m` serves on.",
    )
    port: int = Field(
        8000,
        gt=0,
        lt=65536,
        description="Port that `python -m` serves on.",
    )
    workers: int = Field(
        1,
        gt=0,
        le=256,
        description="Worker processes that `python -m` starts; each keeps its own metrics and "
        "limits, so prefer one per container and scale containers.",
    )
    debug_stats: bool = Field(
        False,
        description="Serve GET /_debug/stats (tasks, runs, threads), for tests only.",
    )

    _api_keys_blank: bool = PrivateAttr(False)  # API_KEYS was set, to no key at all

    @field_validator(
        "api_keys",
        "open_paths",
        "cors_origins",
        "cors_methods",
        "cors_headers",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _keys_present_when_required(
        cls, data: Any, handler: ModelWrapValidatorHandler[Self]
    ) -> Self:
        settings = handler(data)
        given = data.get("api_keys") if isinstance(data, dict) else None
        # API_KEYS="," parses to no key: with keys required that is an error, else a warning.
        blank = isinstance(given, str) and bool(given.strip()) and not settings.api_keys
        if settings.api_keys_required and not settings.api_keys:
            problem = "holds no key" if blank else "is empty"
            raise ValueError(f"API_KEYS_REQUIRED is true but API_KEYS {problem}; set API_KEYS")
        settings._api_keys_blank = blank
        return settings

    def warnings(self) -> list[str]:
        """What in these settings is legal but likely a mistake, for the start-up log."""
        found = []
        if self._api_keys_blank:
            found.append("API_KEYS is set but holds no key: requests are served without one")
        return found

    def lm_overrides(self, prefix: str = "lm") -> LMOverrides:
        """The settings named ``{prefix}_model``, ``_api_base``, ``_api_key``, ``_max_connections``
        (LM_MAX_CONNECTIONS when a program's is unset), and the timeout."""
        api_key: SecretStr | None = getattr(self, f"{prefix}_api_key")
        max_connections: int | None = getattr(self, f"{prefix}_max_connections")
        return LMOverrides(
            model=getattr(self, f"{prefix}_model"),
            api_base=getattr(self, f"{prefix}_api_base"),
            api_key=api_key.get_secret_value() if api_key else None,
            timeout=self.lm_timeout,
            num_retries=self.lm_num_retries,
            max_connections=max_connections or self.lm_max_connections,
        )

    def run_limits(self) -> RunLimits:
        """The limits every run is held to."""
        return RunLimits(
            max_input_chars=self.max_input_chars,
            max_concurrent=self.max_concurrent_runs,
            max_per_caller=self.max_concurrent_runs_per_key,
            batch_parallelism=self.batch_parallelism,
            batch_max_items=self.batch_max_items,
            deadline=self.run_deadline,
            idle_timeout=self.idle_timeout,
            grace=self.run_grace,
            log_ttl=self.run_ttl,
            log_max_events=self.run_log_max_events,
            reconnect_delay=self.reconnect_delay,
            keepalive=self.keepalive_interval,
            flush_interval=self.stream_flush_interval,
            shutdown_grace=self.shutdown_grace,
        )

    def run_log(self) -> RunLog:
        """Where streamed runs keep their events: Redis with REDIS_URL, else this process."""
        if self.redis_url:
            from .runtime.redis_log import RedisLog  # only a service with Redis imports it

            return RedisLog(
                self.redis_url,
                prefix=self.redis_prefix,
                max_events=self.run_log_max_events,
                ttl=self.run_ttl,
                heartbeat_timeout=self.run_heartbeat_timeout,
                max_connections=self.redis_max_connections,
            )
        from .runtime.memory_log import MemoryLog

        return MemoryLog(max_events=self.run_log_max_events, ttl=self.run_ttl)


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
