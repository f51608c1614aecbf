"""The LM stays on DSPy's native engine: other client settings fall back to LiteLLM."""

from dspy.clients.backend_selection import select_backend

from cited_answers.programs import SERVICE_LM
from cited_answers.runtime.lm import LMOverrides, build_lm


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
