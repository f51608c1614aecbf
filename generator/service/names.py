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
from dataclasses import dataclass

from dspy_forge.service.anatomy import CUSTOM
from dspy_forge.service.packages import package_problem
from dspy_forge.spec.contract import Spec
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
            "BestOfN",
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
            "rewards",
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
            "Header",
            "LastEventId",
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
    "client.py": frozenset(
        {
            "Any",
            "AsyncClient",
            "AsyncClientBase",
            "AsyncProgram",
            "AsyncStream",
            "Client",
            "ClientBase",
            "ConnectionLost",
            "ContextWindowExceeded",
            "Done",
            "Error",
            "Field",
            "InternalError",
            "Literal",
            "NotFound",
            "Prediction",
            "Request",
            "Response",
            "ResumeExpired",
            "RunCancelled",
            "RunLost",
            "RunNotFound",
            "ServiceError",
            "Status",
            "Stream",
            "SyncProgram",
            "Timeout",
            "Token",
            "TooManyRequests",
            "Unauthorized",
            "Unavailable",
            "UpstreamFailed",
            "ValidationFailed",
        }
    ),
    # What runtime/client_core.py's client bases define: `client.<program>` must not replace it.
    "client.py's Client": frozenset(
        {
            "_bind",
            "_owns_http",
            "_transport",
            "aclose",
            "cancel_run",
            "close",
            "read_run",
            "with_options",
        }
    ),
    "tests/test_client.py": frozenset({"Client", "ClientFactory", "Done", "Prediction"}),
    "tools": frozenset({"Literal"}),
    # The stub of a Custom module (modules/<module>.py.jinja) imports these.
    "modules": frozenset({"Any", "dspy"}),
    # /v1/runs/{run_id}... (runtime/run_routes.py): a program `runs` would shadow them.
    "URL paths": frozenset({"/v1/programs", "/v1/runs"}),
}
BUILTINS = frozenset(name for name in dir(builtins) if not name.startswith("_"))


# The standard library, with its regression tests' package ``test``, which
# sys.stdlib_module_names leaves out though most Python builds install it.
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
    classes: set[str] = set()  # a class shared by programs is imported once
    for program_name, program in spec.programs.items():
        if program.module == CUSTOM and program.impl and program.impl not in classes:
            classes.add(program.impl)
            module_name, class_name = program.impl.split(":")
            path = ("programs", program_name, "impl")
            what = f"the module class of program {program_name!r}"
            add("programs.py", class_name, path, what)
            add(f"modules/{module_name.removeprefix('modules.')}.py", class_name, path, what)
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
        for suffix in ("Request", "Response", "Program"):
            add("client.py", f"{prefix}{suffix}", path, f"the client's {suffix} class {own}")
        add("client.py", f"Async{prefix}Program", path, f"the async client's class {own}")
        add("client.py's Client", program_name, path, f"the client's attribute {own}")
        for verb in ("run", "stream", "batch"):
            add("routes.py", f"{verb}_{program_name}", path, f"the {verb} route {own}")
        for kind in ("INPUTS", "OUTPUTS", "ANSWERS"):
            add("tests/test_programs.py", f"{upper}_{kind}", path, f"the test data {own}")
        for test in ("returns_its_outputs", "streams_its_outputs", "rejects_a_bad_request"):
            add("tests/test_programs.py", f"test_{program_name}_{test}", path, f"a test {own}")
        for kind in ("ANSWERS", "OUTPUTS"):
            add("tests/test_client.py", f"{upper}_{kind}", path, f"the test data {own}")
        for verb in ("calls", "streams"):
            add(
                "tests/test_client.py",
                f"test_the_client_{verb}_{program_name}",
                path,
                f"a test {own}",
            )
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
        folder = item.module.partition("/")[0] if "/" in item.module else item.module
        fixed = TEMPLATE_NAMES.get(folder if folder in {"tools", "modules"} else item.module)
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
