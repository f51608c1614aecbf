"""The modules a generated project imports, which its package name must not hide.

A package named like an installed module (``requests``, ``tqdm``, ``test``)
would be imported instead of it, breaking the app or its dependencies. So the
name is checked against the standard library and the top-level modules of the
generated project's whole dependency closure, read from installed metadata
(with a committed list for when it cannot be read).
"""

from __future__ import annotations

import functools
import importlib.metadata as metadata
import keyword
import re
import sys

from dspy_forge.paths import template_root
from dspy_forge.spec.contract import snake_case

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
        "ag_ui",
        "aiohappyeyeballs",
        "aiohttp",
        "aiosignal",
        "alembic",
        "annotated_doc",
        "annotated_types",
        "anyio",
        "attr",
        "attrs",
        "boto3",
        "botocore",
        "cachetools",
        "certifi",
        "cffi",
        "charset_normalizer",
        "click",
        "cloudpickle",
        "colorama",
        "colorlog",
        "cryptography",
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
        "google",
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
        "jwt",
        "litellm",
        "litellm_cli",
        "mako",
        "markupsafe",
        "mcp",
        "mcp_types",
        "multidict",
        "multipart",
        "numpy",
        "openai",
        "openinference",
        "opentelemetry",
        "optuna",
        "orjson",
        "packaging",
        "pip",
        "pkg_resources",
        "pluggy",
        "prometheus_client",
        "propcache",
        "py",
        "pycparser",
        "pydantic",
        "pydantic_core",
        "pydantic_settings",
        "pygments",
        "pytest",
        "pytest_asyncio",
        "python_multipart",
        "redis",
        "referencing",
        "regex",
        "requests",
        "rpds",
        "ruff",
        "s3transfer",
        "setuptools",
        "six",
        "sniffio",
        "sqlalchemy",
        "sse_starlette",
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
        "wrapt",
        "yaml",
        "yarl",
        "zipp",
    }
)
# What else a generated project imports by a top-level name: its own tests.
OTHER_MODULES = frozenset({"tests"})
STDLIB_MODULES = frozenset(name.lower() for name in (*sys.stdlib_module_names, "test"))


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
