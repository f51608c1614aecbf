"""Properties of the generator, for specs drawn by hypothesis (tests/system/strategies.py).

- Any valid spec generates a project that passes ruff check and ruff format
  --check, compiles, and whose app builds and serves every program.
- Any broken spec, or broken YAML, raises SpecInvalid with located errors, never
  another exception.
- Generation is deterministic: byte-identical output whatever the order of keys.
- Round trip: the normal form of a spec (dump_spec) loads to the same spec and model.
- The escaping filters give text that reads back exactly, formatted as ruff would.
"""

from __future__ import annotations

import importlib
import inspect
import random
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from dspy_forge.render.generate import generate
from dspy_forge.render.literals import md_text, py_str, toml_str
from dspy_forge.spec.dump import dump_spec
from dspy_forge.spec.errors import SpecInvalid
from dspy_forge.spec.loader import load_spec_text
from tests.projects import tree
from tests.system.strategies import specs, text

# Generating takes a second or two: few examples, and no shrinking (minutes per failure);
# a failure still prints the spec that caused it.
SLOW = settings(
    max_examples=10,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Mappings whose keys are names chosen by the spec's author; their order is meaningful.
NAMED = {"signatures", "tools", "programs", "inputs", "outputs", "args"}


def as_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def ruff(project: Path, *command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "--no-cache", "."],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def read_back(project: Path, package: str) -> tuple[set[str], dict[str, Any], Any]:
    """Build the generated app in this process: its paths, signature texts and settings.

    The package is forgotten afterwards, so the next example may reuse its name.
    """
    sys.path.insert(0, str(project / "src"))
    try:
        module = importlib.import_module(f"{package}.app")
        settings_type = importlib.import_module(f"{package}.settings").Settings
        # A key, in case the spec requires one to start.
        settings = settings_type(_env_file=None, api_keys=["a-key"])
        paths = set(module.create_app(settings).openapi()["paths"])
        signatures = importlib.import_module(f"{package}.signatures")
        texts = {
            name: (
                cls.instructions,
                {k: f.json_schema_extra["desc"] for k, f in cls.fields.items()},
            )
            for name, cls in vars(signatures).items()
            if isinstance(cls, type) and cls.__module__ == signatures.__name__
        }
        return paths, texts, settings
    finally:
        sys.path.remove(str(project / "src"))
        for name in [name for name in sys.modules if name.split(".")[0] == package]:
            del sys.modules[name]


# Instructions that a docstring could not hold as they are, met by chance only rarely.
DOCSTRING_EDGES = {
    "version": 1,
    "service": {"name": "svc-doc"},
    "lm": {"model": "m"},
    "signatures": {
        "Edge": {
            "instructions": "Trailing space.  \n  indented\n    \n\tTabbed, \u3000 wide",
            "inputs": {"q": {"type": "str", "description": 'ends with a quote"'}},
            "outputs": {"a": {"type": "str", "description": "ends with a backslash\\"}},
        }
    },
    "programs": {"p": {"module": "Predict", "signature": "Edge"}},
}


@SLOW
@example(data=DOCSTRING_EDGES)
@given(data=specs())
def test_a_valid_spec_generates_a_clean_importable_project(
    data: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    loaded = load_spec_text(as_yaml(data))
    project = generate(loaded, tmp_path_factory.mktemp("valid") / "project")
    ruff(project, "check")
    ruff(project, "format", "--check")
    for path in project.rglob("*.py"):
        compile(path.read_text(encoding="utf-8"), str(path), "exec")
    paths, texts, settings = read_back(project, loaded.model.package)
    for program in data["programs"]:
        assert {f"/v1/{program}", f"/v1/{program}/stream", f"/v1/{program}/batch"} <= paths
    # MCP and AG-UI follow the spec too (MCP's route is not in the OpenAPI paths).
    protocols = loaded.spec.server.protocols
    assert (settings.protocol_mcp, settings.protocol_agui) == (protocols.mcp, protocols.agui)
    assert ("/agui/{program}" in paths) == protocols.agui
    server = loaded.spec.server  # the spec's server section is the settings' defaults
    assert settings.api_keys_required == server.auth.required
    assert settings.open_paths == server.auth.open_paths
    assert (settings.cors_origins, settings.cors_methods, settings.cors_headers) == (
        server.cors.origins,
        server.cors.methods,
        server.cors.headers,
    )
    assert (settings.protocol_openai, settings.protocol_ai_sdk) == (
        server.protocols.openai,
        server.protocols.ai_sdk,
    )
    # The app serves exactly the protocols the spec turns on.
    assert ("/openai/v1/chat/completions" in paths) == server.protocols.openai
    assert ("/ai-sdk/{program}" in paths) == server.protocols.ai_sdk
    for key, value in server.model_dump(exclude={"auth", "cors", "protocols"}).items():
        assert getattr(settings, key) == value, key
    for name, signature in loaded.spec.signatures.items():
        instructions, descriptions = texts[name]
        if signature.instructions and inspect.cleandoc(signature.instructions):  # else DSPy's
            assert instructions == inspect.cleandoc(signature.instructions)
        for field, spec in {**signature.inputs, **signature.outputs}.items():
            assert descriptions[field] == (spec.description or f"${{{field}}}")


def shuffled(data: Any, rnd: random.Random, *, named: bool = False) -> Any:
    """``data`` with the keys of every mapping of fixed keys in a random order."""
    if isinstance(data, list):
        return [shuffled(item, rnd) for item in data]
    if not isinstance(data, dict):
        return data
    items = [
        (key, shuffled(value, rnd, named=key in NAMED and not named)) for key, value in data.items()
    ]
    if not named:
        rnd.shuffle(items)
    return dict(items)


@settings(SLOW, max_examples=4)
@given(data=specs(), seed=st.integers(0, 2**32 - 1))
def test_generation_is_deterministic_whatever_the_key_order(
    data: dict[str, Any], seed: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("same")
    first = generate(load_spec_text(as_yaml(data)), root / "first")
    other = shuffled(data, random.Random(seed))
    second = generate(load_spec_text(as_yaml(other)), root / "second")
    assert tree(first) == tree(second)


@FAST
@given(data=specs())
def test_the_normal_form_loads_to_the_same_spec_and_model(data: dict[str, Any]) -> None:
    loaded = load_spec_text(as_yaml(data))
    again = load_spec_text(dump_spec(loaded.spec))
    assert again.spec == loaded.spec
    assert again.model == loaded.model
    assert dump_spec(again.spec) == dump_spec(loaded.spec)


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)


def paths_of(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(data, dict):
        for key, value in data.items():
            found += paths_of(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += paths_of(value, (*path, index))
    return found


def mutate(data: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    """A copy of ``data`` with the value at ``path`` deleted, replaced, or given a new key."""
    if not path:
        return value if action == "replace" else data
    head, *rest = path
    copy = dict(data) if isinstance(data, dict) else list(data)
    if rest:
        copy[head] = mutate(copy[head], tuple(rest), action, value)
    elif action == "delete":
        del copy[head]
    elif action == "replace":
        copy[head] = value
    elif isinstance(copy[head], dict):
        copy[head] = {**copy[head], "extra_key": value}
    return copy


def assert_only_located_errors(source: str) -> None:
    try:
        load_spec_text(source, file="spec.yaml")
    except SpecInvalid as exc:
        assert exc.errors
        for error in exc.errors:
            assert error.file == "spec.yaml" and error.message
            assert error.location is not None and error.location.line >= 1, error


@FAST
@given(data=specs(), choice=st.data())
def test_a_broken_spec_raises_only_located_errors(data: dict[str, Any], choice: Any) -> None:
    paths = paths_of(data)
    edits = choice.draw(st.integers(1, 3))
    for _ in range(edits):
        path = choice.draw(st.sampled_from(paths))
        action = choice.draw(st.sampled_from(["delete", "replace", "add"]))
        data = mutate(data, path, action, choice.draw(values))
        paths = paths_of(data)
    assert_only_located_errors(as_yaml(data) if isinstance(data, dict) else yaml.safe_dump(data))


@FAST
@given(data=specs(), choice=st.data())
def test_broken_yaml_raises_only_located_errors(data: dict[str, Any], choice: Any) -> None:
    source = as_yaml(data)
    for _ in range(choice.draw(st.integers(1, 4))):
        at = choice.draw(st.integers(0, len(source)))
        cut = choice.draw(st.integers(0, 3))
        insert = choice.draw(
            st.sampled_from(["\t", ":", "- ", "{", "[", "'", '"', "&a ", "*a", "!!", "\n  ", "? "])
            | st.text(max_size=3)
        )
        source = source[:at] + insert + source[at + cut :]
    assert_only_located_errors(source)


@settings(max_examples=30, deadline=None)
@given(texts=st.lists(text | st.text(), min_size=1, max_size=20))
def test_python_literals_read_back_and_are_already_formatted(
    texts: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    texts = [t for t in texts if not any("\ud800" <= c <= "\udfff" for c in t)] or [""]
    source = "".join(f"x{i} = {py_str(t)}\n" for i, t in enumerate(texts))
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    assert [namespace[f"x{i}"] for i in range(len(texts))] == texts
    module = tmp_path_factory.mktemp("literals") / "literals.py"
    module.write_text(source, encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "format",
            "--check",
            "--isolated",
            # What is checked is the quoting and escaping; a line too long for any
            # limit would have ruff wrap the assignment in parentheses, whatever the quote.
            "--line-length",
            "1000",
            "--no-cache",
            str(module),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


@FAST
@given(value=text | st.text())
def test_toml_and_markdown_text_stay_in_their_slot(value: str) -> None:
    value = "".join(c for c in value if not "\ud800" <= c <= "\udfff")
    assert tomllib.loads(f"key = {toml_str(value)}")["key"] == value
    shown = md_text(value)
    assert "\n" not in shown and "<" not in shown and ">" not in shown
    for index, char in enumerate(shown):
        if char in "`*_[]#|":  # escaped: an odd number of backslashes before it
            run = len(shown[:index]) - len(shown[:index].rstrip("\\"))
            assert run % 2 == 1, (value, shown)
