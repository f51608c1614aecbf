"""dspy-forge: generate streaming FastAPI services from a YAML spec of DSPy programs.

The public API, which the CLI is a shell over::

    import dspy_forge
    spec = dspy_forge.load_spec("agent.yaml")      # SpecInvalid lists every problem
    dspy_forge.generate(spec, "agent-service")     # a new project, or an update

The stages, in the order a spec goes through them: ``spec`` (safe YAML, the
contract, located validation), ``service`` (the resolved model and the DSPy
facts it relies on), ``render`` (the view, Copier, generate and update), and
``dev`` (the fake LM, the demo and the dev server). docs/design.md follows one
value through them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["__version__", "generate", "load_spec"]

if TYPE_CHECKING:
    from dspy_forge.render.update import Plan
    from dspy_forge.spec.loader import LoadedSpec


def load_spec(path: str | Path) -> LoadedSpec:
    """Read and check a spec file; raise ``SpecInvalid`` with every located problem."""
    from dspy_forge.spec.loader import load_spec as load

    return load(Path(path))


def generate(spec: LoadedSpec, out: str | Path, *, rebase: bool = False) -> Plan | Path:
    """Generate ``spec`` into ``out``: a new project, or an update of one generated before.

    A new or empty folder gets a new project (its path is returned), or stays as
    it was if generation fails; a project generated before is updated with
    Copier's three-way merge, keeping its edits (the plan of what changed is
    returned; ``rebase`` recovers one whose template version is gone, see
    docs/updating.md). Anything else is refused.
    """
    from dspy_forge.render.cleanup import removed_on_failure
    from dspy_forge.render.generate import generate as render
    from dspy_forge.render.update import find_project, update_project

    folder = Path(out)
    if find_project(folder) is not None:
        # Written only once Copier's merge succeeded, on a copy (render.update, note 1).
        return update_project(spec, folder, rebase=rebase)
    with removed_on_failure(folder):
        return render(spec, folder)
