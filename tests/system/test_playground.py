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

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
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
from dspy_forge.render.generate import generate
from dspy_forge.spec.loader import load_spec, load_spec_text
from tests.conftest import EXAMPLES, ROOT, SPECS

from .serving import served, wait_until

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
# Generous, for a busy machine: these are deadlines for what must happen, not waits.
expect.set_options(timeout=20_000)

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
    url: str  # the service's root
    errors: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def assert_clean(self, expected: tuple[str, ...] = ()) -> None:
        """No console error (but the ``expected`` ones), no request beyond the service's origin."""
        assert [error for error in self.errors if not any(e in error for e in expected)] == []
        origin = urlsplit(self.url)
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

    def open_(url: str, *, width: int = 1280, height: int = 900) -> Session:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        session = Session(page, url)
        page.on("console", lambda m: m.type == "error" and session.errors.append(m.text))
        page.on("pageerror", lambda error: session.errors.append(str(error)))
        page.on("request", lambda request: session.urls.append(request.url))
        page.goto(f"{url}/playground")
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
    expect(snippet).to_contain_text(f"{session.url}{program['endpoints']['stream']}")
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
        session = open_page(service.url)
        options = session.control("Program").get_by_role("option")
        expect(options).to_have_text([program["name"] for program in programs])
        for program in programs:
            run_and_check(session, program)
        session.assert_clean()


def qa_program(service: RunningService, **headers: str) -> dict[str, Any]:
    (program,) = programs_of(service, **headers)
    return program


def test_tokens_appear_before_the_run_ends_and_add_up_to_the_prediction(
    example_project: Callable[[str], Path], fake_lm: FakeLM, tmp_path: Path, open_page
) -> None:
    with serve(example_project, fake_lm, tmp_path, "qa", "delay-40ms") as service:
        session = open_page(service.url)
        session.control("question").fill("What is DSPy?")
        session.control("question").press("Control+Enter")  # the keyboard's Run
        answer, stop = session.region("answer"), session.button("Stop")
        # One look at both (note 2): text in the field while the run still goes on.
        session.page.wait_for_function(
            "([field, stop]) => field.querySelector('.tokens').textContent.length > 0"
            " && !stop.disabled",
            arg=[answer.element_handle(), stop.element_handle()],
        )
        expect(session.page.get_by_label("Timings")).to_contain_text("running")
        expect(session.page.get_by_label("Timings")).to_contain_text("done")
        outputs = list(qa_program(service)["output_schema"]["properties"])
        value = session.region("Prediction").get_by_role("definition").nth(outputs.index("answer"))
        assert answer.locator(".tokens").inner_text() == value.inner_text()  # the token promise
        expect(session.region("Status")).to_contain_text("Thinking...")
        session.assert_clean()


def test_stop_cancels_the_run_and_closes_the_upstream_stream(
    example_project: Callable[[str], Path], fake_lm: FakeLM, tmp_path: Path, open_page
) -> None:
    scenario = "stall-after-3"
    with serve(example_project, fake_lm, tmp_path, "qa", scenario) as service:
        session = open_page(service.url)
        session.control("question").fill("Will you ever finish?")
        session.button("Run").click()
        # The fake LM goes silent after three chunks: the run cannot end by itself.
        expect(session.region("Status")).to_contain_text("Thinking...")
        expect(session.button("Stop")).to_be_enabled()
        session.button("Stop").focus()
        session.page.keyboard.press("Enter")  # the button, from the keyboard
        alert = session.page.get_by_role("alert")
        expect(alert).to_contain_text("Stopped")
        expect(alert).to_contain_text("cancelled")
        expect(session.button("Run")).to_be_enabled()
        expect(session.region("Prediction")).to_contain_text("No prediction.")

        def upstream_closed() -> bool:
            counters = fake_lm.stats()["scenarios"].get(scenario, {})
            return counters.get("streams_disconnected", 0) >= 1

        assert wait_until(upstream_closed)
        assert any(url.endswith("/cancel") for url in session.urls)
        session.assert_clean()


def test_an_lm_failure_is_shown_as_the_services_typed_error(
    example_project: Callable[[str], Path], fake_lm: FakeLM, tmp_path: Path, open_page
) -> None:
    with serve(example_project, fake_lm, tmp_path, "qa", "http-500") as service:
        failed = httpx.post(f"{service.url}/v1/qa", json={"question": "Hm?"}, timeout=30)
        code = failed.json()["error"]["code"]
        session = open_page(service.url)
        session.control("question").fill("Hm?")
        session.button("Run").click()
        alert = session.page.get_by_role("alert")
        expect(alert).to_contain_text("Error")
        expect(alert.locator("code")).to_have_text(code)
        expect(session.page.get_by_label("Timings")).to_contain_text("failed")
        expect(session.button("Run")).to_be_enabled()


def test_a_json_field_is_checked_as_it_is_typed_and_a_bad_one_sends_nothing(
    example_project: Callable[[str], Path], fake_lm: FakeLM, tmp_path: Path, open_page
) -> None:
    with serve(example_project, fake_lm, tmp_path, "toolbox") as service:
        session = open_page(service.url)
        session.control("Program").select_option("profile")
        hints = session.control("hints")
        hints.fill('["unclosed"')
        expect(hints).to_have_attribute("aria-invalid", "true")
        expect(session.page.get_by_text("Not valid JSON")).to_be_visible()
        hints.fill('{"a": 1}')
        expect(session.page.get_by_text("Expected a JSON list, got object.")).to_be_visible()
        session.control("max_items").fill("2.5")
        session.button("Run").click()
        expect(session.page.get_by_text("Enter a whole number.")).to_be_visible()
        assert not any(url.endswith("/stream") for url in session.urls)
        hints.fill('["fine"]')
        expect(hints).not_to_have_attribute("aria-invalid", "true")
        # An optional Literal may be left empty: the request then leaves it out.
        session.control("language").select_option(label="(empty)")
        session.control("max_items").fill("2")
        session.button("Copy as Python").click()
        snippet = session.page.get_by_label("Request snippet")
        expect(snippet).to_contain_text('"hints": [\n        "fine",\n    ],')
        expect(snippet).not_to_contain_text('"language"')
        expect(snippet).to_contain_text('"strict": False')
        # What only the service checks comes back beside its field: the spec's max_input_chars.
        session.control("text").fill("x" * 20_001)
        session.button("Run").click()
        expect(session.page.get_by_role("alert").locator("code")).to_have_text("invalid_input")
        expect(session.control("text")).to_have_attribute("aria-invalid", "true")
        expect(session.control("text")).to_be_focused()


def test_with_api_keys_the_page_asks_for_one_and_says_when_it_is_wrong(
    example_project: Callable[[str], Path], fake_lm: FakeLM, tmp_path: Path, open_page
) -> None:
    with serve(example_project, fake_lm, tmp_path, "qa", API_KEYS=KEY) as service:
        page = httpx.get(f"{service.url}/playground", timeout=10)
        assert page.status_code == 200  # the page itself is open: the user types the key there
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert httpx.get(f"{service.url}/v1/programs", timeout=10).status_code == 401
        session = open_page(service.url)
        expect(session.control("API key")).to_be_focused()
        expect(session.control("Program")).to_be_disabled()
        session.control("API key").fill("not-the-key")
        session.control("API key").press("Enter")
        alert = session.page.get_by_role("alert")
        expect(alert).to_contain_text("The service refused this API key.")
        expect(alert.locator("code")).to_have_text("unauthorized")
        # A refused key is not kept: a reload asks again.
        assert session.page.evaluate("sessionStorage.length") == 0
        session.control("API key").fill(KEY)
        session.button("Use key").click()
        expect(alert).to_have_count(0)
        run_and_check(session, qa_program(service, **{"X-API-Key": KEY}))
        expect(session.page.get_by_label("Request snippet")).to_contain_text("$API_KEY")
        assert KEY not in session.page.get_by_label("Request snippet").inner_text()
        storage = session.page.evaluate(
            "[sessionStorage.length, localStorage.length, document.cookie]"
        )
        assert storage == [1, 0, ""]  # the key lives in sessionStorage alone
        # The copied requests run as they are, with the key from the environment.
        snippets = [("Copy as Python", [sys.executable, "-c"])]
        if shutil.which("curl"):
            snippets.append(("Copy as curl", ["bash", "-c"]))
        for button, command in snippets:
            session.button(button).click()
            snippet = session.page.get_by_label("Request snippet").inner_text()
            done = subprocess.run(
                [*command, snippet], env={**os.environ, "API_KEY": KEY},
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert "event: done" in done.stdout, (button, done.stdout, done.stderr)


def test_the_playground_is_off_when_the_setting_says_so(
    example_project: Callable[[str], Path], fake_lm: FakeLM, tmp_path: Path
) -> None:
    with serve(example_project, fake_lm, tmp_path, "qa", PLAYGROUND="false") as service:
        for path in ("/playground", "/playground/playground.js"):
            response = httpx.get(f"{service.url}{path}", timeout=10)
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("shot", "width", "height"), [("playground", 1280, 1000), ("playground-narrow", 390, 1400)]
)
def test_screenshot_of_an_agent_thinking(
    shot: str, width: int, height: int,
    example_project: Callable[[str], Path], fake_lm: FakeLM, tmp_path: Path, open_page,
) -> None:  # fmt: skip
    folder = ROOT / "docs" if os.environ.get("DSPY_FORGE_SCREENSHOTS") == "docs" else tmp_path
    with serve(example_project, fake_lm, tmp_path, "research-agent", "delay-60ms") as service:
        session = open_page(service.url, width=width, height=height)
        session.control("question").fill("What is DSPy, and who maintains it?")
        session.button("Run").click()
        steps = session.region("next_thought").get_by_role("listitem")
        expect(steps.nth(1)).to_contain_text("Thought")
        # The first step's tool call shows its arguments, and the timeline too.
        expect(steps.nth(0)).to_contain_text('"query"')
        expect(session.region("Status")).to_contain_text('"query"')
        expect(session.button("Stop")).to_be_enabled()
        session.page.screenshot(path=str(folder / f"{shot}.png"), full_page=True)
        expect(session.region("Prediction").get_by_role("term")).to_have_count(2, timeout=90_000)
        session.page.screenshot(path=str(tmp_path / f"{shot}-done.png"), full_page=True)
        session.assert_clean()


def test_the_demo_prints_the_playground_url_where_the_agent_thinks(
    tmp_path: Path, open_page
) -> None:
    """The README's first command, then its printed URL: the issue's "done when"."""
    from .test_demo_processes import Demo, free_port

    demo = Demo(tmp_path / "demo-service", free_port(), spec=SPECS / "research-agent.yaml")
    try:
        assert demo.read_until("/playground"), "".join(demo.lines)
        url = demo.lines[-1].split("browser: ", 1)[1].strip()
        assert demo.read_until("curl -N"), "".join(demo.lines)
        session = open_page(url.removesuffix("/playground"))
        session.control("question").fill("What is DSPy?")
        session.button("Run").click()
        thought = session.region("next_thought").get_by_role("listitem").first
        expect(thought).to_contain_text("Thought")
        expect(session.region("Prediction").get_by_role("term")).to_have_count(2, timeout=60_000)
        session.assert_clean()
    finally:
        demo.end()


def test_screenshot_of_every_field_type_and_a_typed_prediction(
    example_project: Callable[[str], Path], fake_lm: FakeLM, tmp_path: Path, open_page
) -> None:
    folder = ROOT / "docs" if os.environ.get("DSPY_FORGE_SCREENSHOTS") == "docs" else tmp_path
    with serve(example_project, fake_lm, tmp_path, "toolbox") as service:
        program = next(p for p in programs_of(service) if p["name"] == "profile")
        session = open_page(service.url, height=1200)
        session.control("Program").select_option("profile")
        fill(session, program)
        session.button("Run").click()
        expect(session.page.get_by_label("Timings")).to_contain_text("done")
        terms = session.region("Prediction").get_by_role("term")
        expect(terms).to_have_count(len(program["output_schema"]["properties"]))
        session.page.screenshot(path=str(folder / "playground-form.png"), full_page=True)
        session.assert_clean()


# DSPy's own input types, which no example spec has: an Image and an optional History.
VISION = """
version: 1
service: {name: vision, title: Vision}
lm: {model: openai/gpt-4o-mini, api_key_env: OPENAI_API_KEY}
programs:
  look:
    module: Predict
    signature: "picture: Image, history: History | None, question -> answer"
    stream: [{field: answer}]
"""
# The smallest valid PNG: one transparent pixel.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def test_an_image_is_chosen_as_a_file_and_a_history_may_be_left_empty(
    fake_lm: FakeLM, tmp_path: Path, open_page
) -> None:
    project = generate(load_spec_text(VISION), tmp_path / "vision")
    with served(project, "vision", fake_lm, tmp_path / "service.log", env=BASE_ENV) as service:
        session = open_page(service.url)
        session.control("question").fill("What is in the picture?")
        session.button("Run").click()
        expect(
            session.page.get_by_text("Give the picture's URL, or choose a file.")
        ).to_be_visible()
        (tmp_path / "pixel.png").write_bytes(PIXEL)
        session.control("picture: choose a picture file").set_input_files(tmp_path / "pixel.png")
        expect(session.control("picture")).to_have_value(
            re.compile(r'^\{"url":"data:image/png;base64,')
        )
        expect(session.control("history")).to_have_value("")
        session.button("Run").click()
        expect(session.page.get_by_label("Timings")).to_contain_text("done")
        expect(session.region("answer")).not_to_have_text("")
        session.assert_clean()
        sent = fake_lm.requests()[-1]["messages"]
        assert "data:image/png;base64," in json.dumps(sent)


class Relay:
    """A TCP relay in front of a service, whose open connections a test can cut at once."""

    def __init__(self, url: str) -> None:
        self.target = urlsplit(url).port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Break every connection open now, as a network would."""
        for end in self.open:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
        self.open.clear()

    def close(self) -> None:
        self.listener.close()
        self.cut()


def test_a_broken_connection_is_followed_again_with_no_gap_and_no_second_run(
    example_project: Callable[[str], Path], fake_lm: FakeLM, tmp_path: Path, open_page
) -> None:
    scenario = "delay-100ms+words-60"
    with serve(example_project, fake_lm, tmp_path, "qa", scenario) as service:
        relay = Relay(service.url)
        try:
            session = open_page(relay.url)
            session.control("question").fill("What is DSPy?")
            session.button("Run").click()
            answer = session.region("answer").locator(".tokens")
            expect(answer).not_to_have_text("")
            relay.cut()
            expect(session.region("Status")).to_contain_text("The connection broke")
            expect(session.page.get_by_label("Timings")).to_contain_text("done", timeout=60_000)
        finally:
            relay.close()
        outputs = list(qa_program(service)["output_schema"]["properties"])
        value = session.region("Prediction").get_by_role("definition").nth(outputs.index("answer"))
        assert answer.inner_text() == value.inner_text()  # no chunk lost, none twice
        assert sum(url.endswith("/v1/qa/stream") for url in session.urls) == 1
        assert any(url.endswith("/events") for url in session.urls)
        # One LM call for the one run: the resume read the run's log, it did not run again.
        assert fake_lm.stats()["scenarios"][scenario]["streams_started"] == 1
        session.assert_clean(expected=("ERR_INCOMPLETE_CHUNKED_ENCODING",))  # the cut itself
