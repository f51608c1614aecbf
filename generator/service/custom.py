"""A Custom program's ``impl``: the user's module class, checked before anything is written.

The class lives in the generated package's ``modules/`` (a user-owned stub the
generator writes once), so ``impl`` must name ``modules.<module>:<Class>``; both
parts become Python names in ``programs.py``'s import.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from dspy_forge.service.anatomy import CUSTOM
from dspy_forge.service.model import CustomModel
from dspy_forge.spec.contract import ProgramSpec
from dspy_forge.spec.errors import Path as KeyPath


def custom_module(
    raw: ProgramSpec,
    path: KeyPath,
    check_name: Callable[[str, KeyPath], bool],
    error: Callable[[KeyPath, str], None],
) -> CustomModel | bool:
    """The class a Custom program's ``impl`` names; False when refused, True when not Custom.

    ``check_name`` reports (and refuses) a name Python or the generated code cannot take.
    """
    if raw.module != CUSTOM:
        if raw.impl is not None:
            error(
                (*path, "impl"),
                f"impl names a Custom module's class; {raw.module} is DSPy's own "
                "(set module: Custom to use yours)",
            )
            return False
        return True
    if raw.impl is None:
        error(
            path,
            "a Custom module needs impl: 'modules.<module>:<Class>', e.g. 'modules.rag:RAG'",
        )
        return False
    module, class_name = raw.impl.split(":")
    if not re.fullmatch(r"modules\.[a-z_][a-z0-9_]*", module) or module == "modules.__init__":
        error(
            (*path, "impl"),
            f"{module!r}: Custom modules live in the generated package's modules/, "
            "as 'modules.<module>'",
        )
        return False
    parts = (module.removeprefix("modules."), class_name)
    if not all([check_name(part, (*path, "impl")) for part in parts]):
        return False
    if len(parts[0]) > 64:
        error((*path, "impl"), "the module name is longer than 64 characters")
        return False
    return CustomModel(module, class_name)
