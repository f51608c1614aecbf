"""The generated package's runtime, imported straight from the template.

``templates/src/{{service.package}}/runtime`` is plain Python with relative imports,
copied verbatim into every generated project. :func:`load_runtime` imports it as
``forge_service.runtime`` (a synthetic parent package, so that the relative imports
resolve) without generating a project, so that the runtime's unit tests
(``tests/unit/runtime``) and benchmarks of one runtime class (``bench/runlog.py``)
exercise the template's code as it is now, in seconds. Bytecode is not written:
nothing may be added to the template's folder.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types

from dspy_forge.paths import template_root

# DSPy would fetch model metadata over the network on first use; offline, use LiteLLM's copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "true")

ROOT = template_root()
RUNTIME = ROOT / "templates" / "src" / "{{service.package}}" / "runtime"
PACKAGE = "forge_service"


def load_runtime() -> types.ModuleType:
    """Import the template's runtime as ``forge_service.runtime``, every module of it."""
    name = f"{PACKAGE}.runtime"
    if name in sys.modules:
        return sys.modules[name]
    parent = types.ModuleType(PACKAGE, "A stand-in for a generated service's package.")
    parent.__path__ = []
    sys.modules[PACKAGE] = parent
    spec = importlib.util.spec_from_file_location(
        name, RUNTIME / "__init__.py", submodule_search_locations=[str(RUNTIME)]
    )
    assert spec is not None and spec.loader is not None
    runtime = importlib.util.module_from_spec(spec)
    sys.modules[name] = runtime
    parent.runtime = runtime  # type: ignore[attr-defined]
    writes_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        spec.loader.exec_module(runtime)
        for path in sorted(RUNTIME.glob("*.py")):
            if path.stem != "__init__":
                importlib.import_module(f"{name}.{path.stem}")
    finally:
        sys.dont_write_bytecode = writes_bytecode
    return runtime
