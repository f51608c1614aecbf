"""Language models from the spec's configuration and the environment.

Only ``api_key``, ``api_base`` and ``timeout`` are passed as client settings:
any other (headers, for example) silently moves DSPy from its native engine to
LiteLLM, which costs several times the CPU per request. The size of the LM's
connection pool is not a client setting: ``lm_pool`` sets it on the native engine.
"""

import logging
import os
from dataclasses import dataclass

import dspy

from .lm_pool import set_max_connections

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LMConfig:
    """An LM as the spec describes it."""

    model: str
    api_key_env: str | None = None
    api_base: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    cache: bool = False


@dataclass(frozen=True)
class LMOverrides:
    """Environment overrides (LM_MODEL, LM_API_BASE, LM_API_KEY, ...) of the service's LM.

    ``max_connections`` is the most calls in flight to the LM at once (its connection pool).
    """

    model: str | None = None
    api_base: str | None = None
    api_key: str | None = None
    timeout: float | None = None
    num_retries: int | None = None
    max_connections: int | None = None


def lm_configured(
    config: LMConfig, overrides: LMOverrides | None = None, *, setting: str = "LM"
) -> bool:
    """Whether the LM has what it needs to be called: a model, and a key if it names one.

    When it has not, a warning at start-up names the variables to set (``setting``
    is the prefix of its overrides, ``LM`` or ``<PROGRAM>_LM``): otherwise the
    first sign would be a 503 on /readyz and a failed first request.
    """
    overrides = overrides or LMOverrides()
    if not (overrides.model or config.model):
        logger.warning("no model for the LM: set %s_MODEL", setting)
        return False
    if config.api_key_env is None or overrides.api_key or os.environ.get(config.api_key_env):
        return True
    logger.warning(
        "no API key for the LM %s: set %s or %s_API_KEY; until then /readyz answers 503",
        overrides.model or config.model,
        config.api_key_env,
        setting,
    )
    return False


def build_lm(config: LMConfig, overrides: LMOverrides | None = None) -> dspy.LM:
    """Create the LM for ``config``, with ``overrides`` applied when given."""
    overrides = overrides or LMOverrides()
    api_key = overrides.api_key or (
        os.environ.get(config.api_key_env) if config.api_key_env else None
    )
    client: dict[str, str | float] = {}
    if api_key:
        client["api_key"] = api_key
    if api_base := overrides.api_base or config.api_base:
        client["api_base"] = api_base
    if overrides.timeout is not None:
        client["timeout"] = overrides.timeout
    generation: dict[str, float | int] = {}
    if config.temperature is not None:
        generation["temperature"] = config.temperature
    if config.max_tokens is not None:
        generation["max_tokens"] = config.max_tokens
    retries = {} if overrides.num_retries is None else {"num_retries": overrides.num_retries}
    lm = dspy.LM(
        overrides.model or config.model, cache=config.cache, **retries, **client, **generation
    )
    if overrides.max_connections is not None:
        set_max_connections(lm, overrides.max_connections)
    return lm
