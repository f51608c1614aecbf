"""The user's files in an update: tool and Custom modules are theirs, and changes are reported."""

from __future__ import annotations

import ast
from pathlib import Path, PurePosixPath

import yaml
from jinja2.sandbox import SandboxedEnvironment
from pathspec import PathSpec

from dspy_forge.render.template import (
    Workspace,
    git,
)
from dspy_forge.render.view import reward_functions
from dspy_forge.render.work_copy import changed_names
from dspy_forge.service.model import ServiceModel, ToolModel


def user_owned(workspace: Workspace, package: str) -> PathSpec:
    """The ``_skip_if_exists`` patterns of the new template, for this project's package."""
    config = yaml.safe_load((workspace.path / "copier.yml").read_text(encoding="utf-8"))
    patterns = config.get("_skip_if_exists", []) if isinstance(config, dict) else []
    env = SandboxedEnvironment()
    rendered = [env.from_string(p).render(service={"package": package}) for p in patterns]
    try:
        return PathSpec.from_lines("gitignore", rendered)  # the syntax Copier uses
    except LookupError:  # pathspec < 1.0 knows it as gitwildmatch
        return PathSpec.from_lines("gitwildmatch", rendered)


def keep_user_files(work: Path, before: str, workspace: Workspace, package: str) -> list[str]:
    """Put back the user's own files that Copier deleted (note 2); say so."""
    git("add", "-A", "--force", cwd=work)
    owned = user_owned(workspace, package)
    notices = []
    for name in changed_names(work, before, "D", renames=True):
        if owned.match_file(name):
            git("checkout", before, "--", name, cwd=work)
            notices.append(
                f"kept {name}: your file, which the new spec or template no longer uses; "
                "delete it yourself if you do not need it"
            )
    return notices


def check_tools(work: Path, model: ServiceModel) -> list[str]:
    """Say which tool implementations no longer match the spec (they are never rewritten)."""
    notices = []
    for tool in model.tools:
        relative, tree = _user_module(work, model.package, tool.module)
        if tree is None:
            continue
        if isinstance(tree, str):
            notices.append(f"{relative} {tree}; programs.py imports {tool.function}")
            continue
        functions = {
            node.name: node
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        wanted = signature(tool)
        found = functions.get(tool.function)
        if found is None:
            notices.append(
                f"{relative} has no {tool.function}, which programs.py imports: add\n    {wanted}"
            )
            continue
        names = [arg.arg for arg in (*found.args.posonlyargs, *found.args.args)]
        names += [arg.arg for arg in found.args.kwonlyargs]
        if names != [arg.name for arg in tool.args]:
            notices.append(
                f"{relative}: {tool.function}({', '.join(names)}) differs from the spec; "
                f"the LM is told the spec's arguments:\n    {wanted}"
            )
    return notices


def check_modules(work: Path, model: ServiceModel) -> list[str]:
    """Say which Custom module classes that programs.py imports a user's file lacks.

    The file is never rewritten, so a class the spec adds to an existing module
    file is not written either; the service would fail to import it.
    """
    notices = []
    wanted = {(p.custom.module, p.custom.class_name) for p in model.programs if p.custom}
    for module, class_name in sorted(wanted):
        relative, tree = _user_module(work, model.package, module)
        if tree is None:
            continue
        if isinstance(tree, str):
            notices.append(f"{relative} {tree}; programs.py imports {class_name}")
            continue
        if class_name not in {node.name for node in tree.body if isinstance(node, ast.ClassDef)}:
            notices.append(
                f"{relative} has no class {class_name}, which programs.py imports: add\n"
                f"    class {class_name}(dspy.Module): built as "
                f"{class_name}(signature, tools=[...]), run with acall"
            )
    return notices


def check_metrics(work: Path, model: ServiceModel) -> list[str]:
    """Say which metric functions that evals.py imports the user's metrics.py lacks.

    Like a tool file, metrics.py is written once: a function the spec names
    later is not added to it, and eval and optimize would fail to import it.
    """
    wanted = {
        p.evaluation.metric.function
        for p in model.programs
        if p.evaluation is not None and p.evaluation.metric.function
    }
    shape = "(example: dspy.Example, prediction: dspy.Prediction, trace: Any = None) -> float"
    return _missing(work, model.package, "metrics", wanted, ("evals.py", "as a metric", shape))


def check_rewards(work: Path, model: ServiceModel) -> list[str]:
    """Say which reward functions that programs.py uses the user's rewards.py lacks.

    rewards.py is written once, like metrics.py: a reward the spec names later
    is not added to it, and the service would fail to start.
    """
    wanted = set(reward_functions(model))
    shape = "(args: dict[str, Any], prediction: dspy.Prediction) -> float"
    return _missing(work, model.package, "rewards", wanted, ("programs.py", "as a reward", shape))


def _missing(
    work: Path, package: str, module: str, wanted: set[str], use: tuple[str, str, str]
) -> list[str]:
    """A notice per function of ``wanted`` that the user's ``module`` file lacks.

    ``use`` says who reads them, as what, and the signature to add.
    """
    if not wanted:
        return []
    importer, role, shape = use
    relative, tree = _user_module(work, package, module)
    if tree is None:
        return []
    if isinstance(tree, str):
        return [f"{relative} {tree}; {importer} imports {', '.join(sorted(wanted))}"]
    defined = {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    return [
        f"{relative} has no {name}, which {importer} uses {role}: add\n    def {name}{shape}: ..."
        for name in sorted(wanted)
        if name not in defined
    ]


def _user_module(
    work: Path, package: str, module: str
) -> tuple[PurePosixPath, ast.Module | str | None]:
    """A user's module file of the package, parsed: its path, and its tree, or None when
    there is no such file, or why it cannot be read as Python."""
    relative = PurePosixPath("src", package, *module.split(".")).with_suffix(".py")
    path = work / relative
    if not path.is_file():
        return relative, None
    try:
        return relative, ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return relative, "is not valid Python"


def signature(tool: ToolModel) -> str:
    args = ", ".join(f"{arg.name}: {arg.type.annotation}" for arg in tool.args)
    return f"async def {tool.function}({args}) -> {tool.returns.annotation}: ..."
