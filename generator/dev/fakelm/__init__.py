"""A deterministic, OpenAI-compatible fake LM that answers in DSPy's adapter formats.

It lets DSPy programs (Predict, ChainOfThought, ReAct with tools) run end to end, token
streaming included, with no API key and no network beyond loopback: for the test suite, the
demo command, benchmarks and failure-injection tests. Start it with ``python -m
dspy_forge.dev.fakelm`` or :func:`serve`, or from tests with :func:`running_fake_lm`.
"""

from dspy_forge.dev.fakelm.launcher import main, serve
from dspy_forge.dev.fakelm.scenario import Scenario, ScenarioError, parse_scenario
from dspy_forge.dev.fakelm.server import FakeLMApp, create_app
from dspy_forge.dev.fakelm.testing import FakeLM, running_fake_lm

__all__ = [
    "FakeLM",
    "FakeLMApp",
    "Scenario",
    "ScenarioError",
    "create_app",
    "main",
    "parse_scenario",
    "running_fake_lm",
    "serve",
]
