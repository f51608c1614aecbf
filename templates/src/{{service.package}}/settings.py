"""Run-time settings, read from the environment and a ``.env`` file."""

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from .runtime.lm import LMOverrides


class Settings(BaseSettings):
    """Settings of the service; every one can be set as an environment variable."""

    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore")

    lm_model: str | None = Field(
        None,
        description="LiteLLM model string that replaces the spec's model "
        "(for every program that does not set its own LM).",
    )
    lm_api_base: str | None = Field(None, description="Base URL of the LM's API.")
    lm_api_key: SecretStr | None = Field(None, description="API key of the LM.")
    lm_timeout: float | None = Field(None, gt=0, description="Seconds to wait for the LM.")

    def lm_overrides(self) -> LMOverrides:
        """The LM settings that replace the spec's."""
        return LMOverrides(
            model=self.lm_model,
            api_base=self.lm_api_base,
            api_key=self.lm_api_key.get_secret_value() if self.lm_api_key else None,
            timeout=self.lm_timeout,
        )


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
