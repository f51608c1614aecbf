"""A BestOfN program's ``best_of``: the module it tries, how often, and the user's reward.

``best_of`` belongs to ``module: BestOfN`` and BestOfN needs it: the generated
program wraps one Predict or ChainOfThought over the program's signature and
scores each attempt with a function of the package's ``rewards.py`` (a user file
written once as a stub, like ``metrics.py``), so the function must be a public
Python name.
"""

from __future__ import annotations

import keyword
from typing import Literal

from dspy_forge.service.anatomy import BEST_OF_N
from dspy_forge.service.model import BestOfModel
from dspy_forge.spec.contract import ProgramSpec
from dspy_forge.spec.errors import Path as KeyPath
from dspy_forge.spec.errors import SpecError

EXAMPLE = "{module: ChainOfThought, attempts: 3, reward: 'rewards:<function>', threshold: 1.0}"


def resolve_best_of(
    raw: ProgramSpec, path: KeyPath
) -> tuple[BestOfModel | Literal[False] | None, list[SpecError]]:
    """The program's attempts (None when it is not a BestOfN, False when wrong), and errors."""
    best_of = raw.best_of
    if raw.module != BEST_OF_N:
        if best_of is None:
            return None, []
        message = f"best_of configures a BestOfN program; this one is a {raw.module}"
        return False, [SpecError((*path, "best_of"), message + " (set module: BestOfN)")]
    if best_of is None:
        return False, [SpecError(path, f"a BestOfN program needs best_of: {EXAMPLE}")]
    function = best_of.reward.split(":", 1)[1]
    if keyword.iskeyword(function) or keyword.issoftkeyword(function) or function[0] == "_":
        message = f"{function!r} cannot be a public Python function name; choose another"
        return False, [SpecError((*path, "best_of", "reward"), message)]
    return BestOfModel(best_of.module, best_of.attempts, function, best_of.threshold), []
