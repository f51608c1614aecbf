"""Names the generated code will define, checked for clashes before anything is rendered.

Each spec name becomes several Python names: a program ``qa`` gives ``QaRequest``
in ``schemas.py``, ``build_qa`` in ``programs.py``, ``QA_INPUTS`` in the tests,
the path ``/v1/qa``, and so on. Two spec names giving the same generated name, or
one replacing a name the template itself defines or imports, would break the
project at import time or, worse, silently (a program ``service`` with its own LM
would replace ``SERVICE_LM``). So every generated name is listed here per module
and checked. ``TEMPLATE_NAMES`` is kept in step with ``templates/`` by a test
that reads the names back from a generated project.
"""

from __future__ import annotations

import builtins
import functools
import importlib.metadata as metadata
import keyword
import re
import sys
from dataclasses import dataclass

from dspy_forge.spec.contract import Spec, snake_case
from dspy_forge.spec.errors import Path as KeyPath
from dspy_forge.spec.errors import SpecError

# Names each generated module defines or imports itself (including the locals of
# programs.py's builders, which a tool function or signature class must not shadow).
TEMPLATE_NAMES: dict[str, frozenset[str]] = {
    "signatures.py": frozenset({"Literal", "dspy"}),
    "schemas.py": frozenset(
        {"BaseModel", "ErrorBody", "Field", "Inputs", "Literal", "Outputs", "dspy"}
    ),
    "programs.py": frozenset(
        {
            "LMConfig",
            "Listen",
            "Literal",
            "Path",
            "Programs",
            "SERVICE_LM",
            "STATE_DIR",
            "ServedProgram",
            "Settings",
            "ToolArg",
            "build_lm",
            "build_programs",
            "dataclass",
            "dspy",
            "lm_configured",
            "spec_tool",
            # locals of build_programs() and build_<program>()
            "lm",
            "lm_ready",
            "module",
            "service_lm",
            "service_overrides",
            "service_ready",
            "settings",
            "state",
            "tools",
        }
    ),
    "routes.py": frozenset(
        {
            "APIRouter",
            "Annotated",
            "BaseModel",
            "Depends",
            "ERROR_RESPONSES",
            "ProgramInfo",
            "Programs",
            "ProgramsDep",
            "Request",
            "Response",
            "Runs",
            "RunsDep",
            "STREAMS",
            "STREAM_RESPONSE",
            "get_programs",
            "get_runs",
            "list_programs",
            "program_info",
            "router",
        }
    ),
    "tests/test_programs.py": frozenset(
        {"Any", "ClientFactory", "EventSource", "json", "read_events", "test_health"}
    ),
    "tools": frozenset({"Literal"}),
    "URL paths": frozenset({"/v1/programs"}),
}
# The distributions a generated project requires, when its template cannot be read
# (project_requirements reads templates/pyproject.toml.jinja), and the installer.
PROJECT_REQUIREMENTS = (
    "dspy",
    "fastapi",
    "fastapi-offline",
    "prometheus-client",
    "pydantic",
    "pydantic-settings",
    "uvicorn",
    "httpx",
    "httpx-sse",
    "pytest",
    "pytest-asyncio",
    "ruff",
    "setuptools",
    "pip",
)
# A quoted requirement with a version: "name[extra, ...]>=1.0" (or ; markers).
_REQUIREMENT = re.compile(
    r'"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]"]*)\])?\s*(?:[<>=!~]=?|;)[^"]*"'
)
# Top-level modules of the closure of the project's requirements, as of dspy 3.4, for an
# environment where they are not installed; where they are, the installed closure is
# read too (installed_closure_modules). A test fails when this list misses a module of
# the closure installed in the checkout's environment.
KNOWN_CLOSURE_MODULES = frozenset(
    {
        "aiohappyeyeballs",
        "aiohttp",
        "aiosignal",
        "annotated_doc",
        "annotated_types",
        "anyio",
        "attr",
        "attrs",
        "boto3",
        "botocore",
        "cachetools",
        "certifi",
        "charset_normalizer",
        "click",
        "cloudpickle",
        "colorama",
        "dateutil",
        "diskcache",
        "distutils",
        "dotenv",
        "dspy",
        "exceptiongroup",
        "fastapi",
        "fastapi_offline",
        "fastuuid",
        "filelock",
        "frozenlist",
        "fsspec",
        "gepa",
        "h11",
        "h2",
        "hf_xet",
        "hpack",
        "httpcore",
        "httpcore2",
        "httptools",
        "httpx",
        "httpx2",
        "httpx_sse",
        "huggingface_hub",
        "hyperframe",
        "idna",
        "importlib_metadata",
        "iniconfig",
        "jinja2",
        "jiter",
        "jmespath",
        "json_repair",
        "jsonschema",
        "jsonschema_specifications",
        "litellm",
        "litellm_cli",
        "markupsafe",
        "multidict",
        "openai",
        "opentelemetry",
        "orjson",
        "packaging",
        "pip",
        "pkg_resources",
        "pluggy",
        "prometheus_client",
        "propcache",
        "py",
        "pydantic",
        "pydantic_core",
        "pydantic_settings",
        "pygments",
        "pytest",
        "pytest_asyncio",
        "referencing",
        "regex",
        "requests",
        "rpds",
        "ruff",
        "s3transfer",
        "setuptools",
        "six",
        "sniffio",
        "starlette",
        "tenacity",
        "tiktoken",
        "tiktoken_ext",
        "tokenizers",
        "tomli",
        "tqdm",
        "truststore",
        "typing_extensions",
        "typing_inspection",
        "urllib3",
        "uvicorn",
        "uvloop",
        "watchfiles",
        "websockets",
        "yaml",
        "yarl",
        "zipp",
    }
)
# What else a generated project imports by a top-level name: its own tests.
OTHER_MODULES = frozenset({"tests"})
BUILTINS = frozenset(name for name in dir(builtins) if not name.startswith("_"))
# The standard library, with its regression tests' package ``test``, which
# sys.stdlib_module_names leaves out though most Python builds install it.
STDLIB_MODULES = frozenset(name.lower() for name in (*sys.stdlib_module_names, "test"))


def pascal(name: str) -> str:
    """'research_agent' -> 'ResearchAgent'."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


@dataclass(frozen=True)
class _Name:
    """A generated name and the spec entry it comes from."""

    module: str
    name: str
    path: KeyPath
    what: str


def generated_names(spec: Spec) -> list[_Name]:
    """Every module-level name, test name and URL path that the spec's names give."""
    names: list[_Name] = []

    def add(module: str, name: str, path: KeyPath, what: str) -> None:
        names.append(_Name(module, name, path, what))

    for signature in spec.signatures:
        path: KeyPath = ("signatures", signature)
        for module in ("signatures.py", "programs.py"):
            add(module, signature, path, f"the class of signature {signature!r}")
    for tool_name, tool in spec.tools.items():
        module_name, function = (tool.impl or f"tools.{tool_name}:{tool_name}").split(":")
        path = ("tools", tool_name, "impl") if tool.impl else ("tools", tool_name)
        what = f"the function of tool {tool_name!r}"
        add("programs.py", function, path, what)
        add(f"tools/{module_name.removeprefix('tools.')}.py", function, path, what)
    for program_name, program in spec.programs.items():
        path = ("programs", program_name)
        prefix, upper = pascal(program_name), program_name.upper()
        own = f"of program {program_name!r}"
        if "->" in program.signature:
            for module in ("signatures.py", "programs.py"):
                add(module, f"{prefix}Signature", path, f"the inline signature class {own}")
        for suffix in ("Request", "Response", "BatchRequest", "BatchResult", "BatchResponse"):
            for module in ("schemas.py", "routes.py"):
                add(module, f"{prefix}{suffix}", path, f"the {suffix} class {own}")
        add("programs.py", f"build_{program_name}", path, f"the builder {own}")
        if program.lm is not None:
            add("programs.py", f"{upper}_LM", path, f"the LM constant {own}")
            add("programs.py", f"{program_name}_overrides", path, f"the LM overrides {own}")
        for verb in ("run", "stream", "batch"):
            add("routes.py", f"{verb}_{program_name}", path, f"the {verb} route {own}")
        for kind in ("INPUTS", "OUTPUTS", "ANSWERS"):
            add("tests/test_programs.py", f"{upper}_{kind}", path, f"the test data {own}")
        for test in ("returns_its_outputs", "streams_its_outputs", "rejects_a_bad_request"):
            add("tests/test_programs.py", f"test_{program_name}_{test}", path, f"a test {own}")
        for tail in ("", "/stream", "/batch"):
            add("URL paths", f"/v1/{program_name}{tail}", path, f"an endpoint {own}")
    return names


def name_clashes(spec: Spec) -> list[SpecError]:
    """Errors for generated names that clash with each other or with the template's."""
    errors: dict[KeyPath, SpecError] = {}
    problem = package_problem(spec.service.name)
    if problem is not None:
        errors[("service", "name")] = SpecError(("service", "name"), problem)
    seen: dict[tuple[str, str], _Name] = {}
    for item in generated_names(spec):
        fixed = TEMPLATE_NAMES.get("tools" if item.module.startswith("tools/") else item.module)
        if item.module.endswith(".py") and item.name in BUILTINS:
            message = f"{item.what} would be {item.name!r}, a Python builtin; choose another name"
        elif fixed is not None and item.name in fixed:
            where = "the service" if item.module == "URL paths" else f"generated {item.module}"
            message = (
                f"{item.what} would be {item.name!r}, which {where} already has; "
                "choose another name"
            )
        elif (first := seen.get((item.module, item.name))) is not None:
            message = f"{item.what} would be {item.name!r}, as {first.what} is; rename one of them"
        else:
            seen[(item.module, item.name)] = item
            continue
        errors.setdefault(item.path, SpecError(item.path, message))  # the first per entry
    return list(errors.values())


def _distribution_key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(
    distribution: metadata.Distribution, extras: frozenset[str]
) -> list[tuple[str, frozenset[str]]]:
    """The distributions ``distribution`` requires here with ``extras``, and their extras."""
    try:
        from packaging.markers import default_environment
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # without packaging, the committed list stands alone
        return []
    environment = default_environment()
    found = []
    for line in distribution.requires or []:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        marker = requirement.marker
        try:
            wanted = marker is None or any(
                marker.evaluate({**environment, "extra": extra}) for extra in (extras or {""})
            )
        except ValueError:  # a marker packaging cannot evaluate: follow it, to be safe
            wanted = True
        if wanted:
            found.append((requirement.name, frozenset(requirement.extras)))
    return found


def project_requirements() -> list[tuple[str, frozenset[str]]]:
    """What a generated project requires (dependencies, test extra, build backend), extras too.

    Read from the template's pyproject.toml, so that a dependency added there is
    followed; with PROJECT_REQUIREMENTS, in case the template cannot be read.
    """
    from dspy_forge.render.generate import (
        template_root,  # not at the top: render imports the loader
    )

    found = [(name, frozenset[str]()) for name in PROJECT_REQUIREMENTS]
    try:
        text = (template_root() / "templates" / "pyproject.toml.jinja").read_text("utf-8")
    except OSError:
        return found
    for name, extras in _REQUIREMENT.findall(text):
        found.append((name, frozenset(e.strip() for e in extras.split(",") if e.strip())))
    return found


@functools.cache
def installed_closure_modules() -> dict[str, str]:
    """Top-level modules of the generated project's requirement closure installed here.

    Maps each module, lower-cased, to the distribution that installs it. Computed
    once per process from the installed metadata (about 0.2 s).
    """
    seen: dict[str, frozenset[str]] = {}  # distribution -> the extras followed
    todo = project_requirements()
    while todo:
        name, extras = todo.pop()
        key = _distribution_key(name)
        if key in seen and extras <= seen[key]:
            continue
        seen[key] = seen.get(key, frozenset()) | extras
        try:
            distribution = metadata.distribution(key)
        except metadata.PackageNotFoundError:
            continue
        todo.extend(_requirements(distribution, extras))
    modules: dict[str, str] = {}
    for module, distributions in metadata.packages_distributions().items():
        owner = next((d for d in distributions if _distribution_key(d) in seen), None)
        if owner is not None:
            modules.setdefault(module.lower(), owner)
    return modules


def package_problem(service_name: str) -> str | None:
    """Why the service's package name cannot be imported safely, or None.

    The package is installed beside the generated project's dependencies: it may
    not take the name of a standard-library module or of any module installed by
    the closure of those dependencies (compared without case, as on macOS and
    Windows file systems).
    """
    package = snake_case(service_name)
    folded = package.lower()
    if keyword.iskeyword(package):
        return f"its package {package!r} is a Python keyword; choose another name"
    if folded in STDLIB_MODULES:
        return f"its package {package!r} would hide the standard library's; choose another name"
    if folded in OTHER_MODULES:
        return f"its package {package!r} would hide the project's own {folded!r}; choose another"
    owner = installed_closure_modules().get(folded)
    if owner is not None or folded in KNOWN_CLOSURE_MODULES:
        source = f" (installed by {owner})" if owner else ""
        return (
            f"its package {package!r} would hide the module {folded!r}{source}, which the "
            "generated service's dependencies install; choose another name"
        )
    return None
