"""The LM stays on DSPy's native engine: other client settings fall back to LiteLLM."""

from dspy.clients.backend_selection import select_backend

from research_agent.programs import SERVICE_LM
from research_agent.runtime.lm import LMOverrides, build_lm
from research_agent.settings import Settings


def test_service_lm_uses_the_native_engine() -> None:
    overrides = LMOverrides(
        model="openai/gpt-4o-mini",
        api_base="http://127.0.0.1:9/v1",
        api_key="test-key",
        timeout=30.0,
    )
    assert select_backend(build_lm(SERVICE_LM, overrides)).native


def test_environment_overrides_replace_the_spec() -> None:
    overrides = LMOverrides(model="openai/other-model", api_base="http://127.0.0.1:9/v1")
    lm = build_lm(SERVICE_LM, overrides)
    assert lm.model == "openai/other-model"
    assert lm.kwargs["api_base"] == "http://127.0.0.1:9/v1"


def test_the_lm_connection_pool_is_a_setting() -> None:
    settings = Settings(_env_file=None, lm_max_connections=500)
    overrides = settings.lm_overrides()
    assert overrides.max_connections == 500
    lm = build_lm(SERVICE_LM, overrides)
    assert lm._engine_store.max_connections == 500
    assert select_backend(lm).native
