"""The playground at /playground, driven in Debian's Chromium through Playwright.

Every test serves a generated project on the fake LM and drives the page only
through what a user (or a screen reader) finds: labels and roles. Each page
records its console errors and every URL it requests, so that a test can say
the page loaded cleanly and reached nothing but its own service.

Notes:
1. Playwright cannot download its own browser here; it drives Debian's
   ``chromium`` (``.ci/run`` installs it), with Chromium's own background
   connections (updates, sync, QUIC probes) turned off.
2. No assertion waits on a clock. "Tokens before the end" is one check in the
   page of two facts at once (the field has text and Stop is still enabled);
   a stop mid-run uses a fake LM that stalls, so the run cannot end by itself.
3. ``DSPY_FORGE_SCREENSHOTS=docs`` writes the screenshots into docs/ (the
   README shows one); otherwise they go to the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from dspy_forge.dev.devserver import RunningService, fake_lm_env
from dspy_forge.dev.fakelm.testing import FakeLM
from tests.conftest import EXAMPLES, ROOT, SPECS
from dspy_forge.spec.loader import load_spec

from .serving import served, wait_until

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
KEY = "playground-test-key"
BASE_ENV = {"LM_NUM_RETRIES": "0"}

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Session:
    """A page on a service, with what it logged and requested."""

    page: Any
    service: RunningService
    errors: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        """No console error, and no request beyond the service's own origin."""
        assert self.errors == []
        origin = urlsplit(self.service.url)
        foreign = [url for url in self.urls if urlsplit(url)[:2] != origin[:2]]
        assert foreign == []

    def region(self, name: str) -> Any:
        return self.page.get_by_role("region", name=name, exact=True)

    def button(self, name: str) -> Any:
        return self.page.get_by_role("button", name=name, exact=True)

    def control(self, name: str) -> Any:
        return self.page.get_by_label(name, exact=True)


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., Session]]:
    contexts = []

    def open_(service: RunningService, *, width: int = 1280, height: int = 900) -> Session:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        session = Session(page, service)
        page.on("console", lambda m: m.type == "error" and session.errors.append(m.text))
        page.on("pageerror", lambda error: session.errors.append(str(error)))
        page.on("request", lambda request: session.urls.append(request.url))
        page.goto(f"{service.url}/playground")
        return session

    yield open_
    for context in contexts:
        context.close()


@contextmanager
def serve(
    example_project: Callable[[str], Path],
    fake_lm: FakeLM,
    tmp_path: Path,
    name: str,
    scenario: str | None = None,
    **env: str,
) -> Iterator[RunningService]:
    model = load_spec(SPECS / f"{name}.yaml").model
    own_lm = [program.name for program in model.programs if program.lm is not None]
    api_base = fake_lm.scenario_base(scenario) if scenario else fake_lm.api_base
    environment = {**BASE_ENV, **fake_lm_env(api_base, own_lm), **env}
    with served(
        example_project(name), model.package, fake_lm, tmp_path / "service.log",
        scenario=scenario, env=environment,
    ) as service:  # fmt: skip
        yield service


def sample(name: str, schema: dict[str, Any]) -> Any:
    """A value of the field's type, as a user would type it."""
    options = schema.get("anyOf", [schema])
    inner = next(option for option in options if option.get("type") != "null")
    if "enum" in inner:
        return inner["enum"][-1]
    return {
        "string": f"A {name} to try",
        "integer": 3,
        "number": 0.5,
        "boolean": True,
        "array": ["alpha", "beta"],
        "object": {"dspy": 1.5},
    }[inner["type"]]


def fill(session: Session, program: dict[str, Any]) -> dict[str, Any]:
    """Fill every input of ``program``'s form; the JSON body it should send."""
    body = {}
    for name, schema in program["input_schema"]["properties"].items():
        value = sample(name, schema)
        control = session.control(name)
        kind = next(o for o in schema.get("anyOf", [schema]) if o.get("type") != "null")
        if "enum" in kind:
            control.select_option(label=value)
        elif kind["type"] == "boolean":
            control.check()
        elif kind["type"] in ("array", "object"):
            control.fill(json.dumps(value))
        else:
            control.fill(str(value))
        body[name] = value
    return body


def programs_of(service: RunningService, **headers: str) -> list[dict[str, Any]]:
    return httpx.get(f"{service.url}/v1/programs", headers=headers, timeout=10).json()


def run_and_check(session: Session, program: dict[str, Any]) -> None:
    """Choose ``program``, fill its form, run it, and see its prediction and timings."""
    session.control("Program").select_option(program["name"])
    body = fill(session, program)
    session.button("Copy as curl").click()
    snippet = session.page.get_by_label("Request snippet")
    compact = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    expect(snippet).to_contain_text(compact)
    expect(snippet).to_contain_text(f"{session.service.url}{program['endpoints']['stream']}")
    session.button("Run").click()
    prediction = session.region("Prediction")
    for output in program["output_schema"]["required"]:
        expect(prediction.get_by_role("term").filter(has_text=output).first).to_be_visible()
    expect(session.button("Run")).to_be_enabled()
    expect(session.button("Stop")).to_be_disabled()
    expect(session.page.get_by_role("alert")).to_have_count(0)
    expect(session.page.get_by_label("Timings")).to_contain_text("done")
    for stream in program["streams"]:
        field_name = stream.split(".")[-1]
        if field_name in program["output_schema"]["properties"]:
            expect(session.region(field_name)).not_to_have_text("")


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_program_of_each_example_runs_in_the_playground(
    name: str, example_project: Callable[[str], Path], fake_lm: FakeLM, tmp_path: Path, open_page
) -> None:
    with serve(example_project, fake_lm, tmp_path, name) as service:
        programs = programs_of(service)
        session = open_page(service)
        options = session.control("Program").get_by_role("option")
        expect(options).to_have_text([program["name"] for program in programs])
        for program in programs:
            run_and_check(session, program)
        session.assert_clean()
