"""The size of an LM's connection pool on DSPy's native engine.

Written for DSPy 3.4.1 (the project pins ``dspy>=3.4,<3.5``). DSPy's native engine, its
vendored lm15, opens at most ``RouterConfig.max_connections`` connections per engine, 100 by
default; a call past them waits for a free one. So without this, at most 100 of an LM's streams
reach the LM at once, however many runs the service admits. ``dspy.LM`` has no setting for it:
DSPy builds each engine's ``RouterConfig`` itself (``dspy.clients.execution._select_engine``)
from ``api_key``, ``api_base`` and ``timeout`` alone, and any other client setting moves the LM
to LiteLLM, at several times the CPU per request.

What this does: DSPy keeps selecting and building every engine as it always does (one per event
loop and client settings, kept in the LM's ``_engine_store`` dict). ``set_max_connections``
replaces that dict with one that, when DSPy stores a native engine it has just built, initializes
that engine again (its public constructor, on the same object) from the same ``RouterConfig`` with
``max_connections`` added. lm15 opens its transport on the first call, so nothing is lost.
Everything else stays DSPy's: backend selection, the fallback to LiteLLM, pricing, errors, one
pool per event loop, closing.

Why not ``dspy.LM(engine=LM15Engine(RouterConfig(max_connections=...)))``, the public door: DSPy
treats an engine object as a custom engine. It refuses ``api_key``/``api_base``/``timeout`` on
the LM, skips provider resolution (compat, pricing, the fallback to LiteLLM), shares one async
engine across event loops, and an LM holding one cannot be saved. Nor a patch of lm15's
``DEFAULT_MAX_CONNECTIONS`` or of ``RouterConfig``: those are process-wide, not per LM.

Limits: a ``copy()`` of the LM shares its engines and so its pool size; a ``deepcopy`` or an
unpickled LM starts with an empty plain store, i.e. DSPy's default pool (and a pool of its own).
If DSPy's internals differ from those this was written for, ``set_max_connections`` raises rather
than leave the setting silently unapplied; ``tests/unit/runtime/test_lm_pool.py`` in dspy-forge
pins them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import dspy
from dspy.clients.engines.lm15_engine import AsyncLM15Engine, LM15Engine
from dspy.lm15 import RouterConfig

__all__ = ["DEFAULT_MAX_CONNECTIONS", "DSPY_VERSION", "PooledEngines", "set_max_connections"]

DSPY_VERSION = "3.4"
"""The DSPy minor version whose internals this module was written for."""

DEFAULT_MAX_CONNECTIONS = 100
"""lm15's own pool size (``dspy._vendor.lm15.transports._limits.DEFAULT_MAX_CONNECTIONS``)."""

_NATIVE = (LM15Engine, AsyncLM15Engine)


class PooledEngines(dict[Any, Any]):
    """An LM's engine store whose native engines have ``max_connections`` connections."""

    def __init__(self, max_connections: int) -> None:
        super().__init__()
        self.max_connections = max_connections

    def __setitem__(self, key: Any, engine: Any) -> None:
        if type(engine) in _NATIVE and engine.config.max_connections is None:
            # Built a moment ago and not yet called: initialized again, in place (DSPy goes on to
            # call the object it built), from its own config with the pool size added.
            config = dataclasses.replace(engine.config, max_connections=self.max_connections)
            engine.__init__(config, model_type=engine.model_type)
        super().__setitem__(key, engine)


def _unsupported(lm: dspy.LM) -> str | None:
    """Why ``lm`` cannot take a pool size here, or None when it can."""
    if not dspy.__version__.startswith(DSPY_VERSION + "."):
        return f"it was written for DSPy {DSPY_VERSION}, this is {dspy.__version__}"
    if "max_connections" not in {field.name for field in dataclasses.fields(RouterConfig)}:
        return "RouterConfig has no max_connections"
    store = getattr(lm, "_engine_store", None)
    if type(store) is not dict or store or not hasattr(lm, "_engine_lock"):
        return "the LM has no empty _engine_store dict"
    if not isinstance(getattr(lm, "_engine_spec", None), str):
        return "the LM has a custom engine"
    return None


def set_max_connections(lm: dspy.LM, max_connections: int) -> dspy.LM:
    """Give ``lm``'s native engines a pool of ``max_connections`` connections; return ``lm``.

    Call it on a new LM, before its first call. The lm15 default (100) changes nothing.
    """
    if max_connections == DEFAULT_MAX_CONNECTIONS:
        return lm
    if max_connections < 1:
        raise ValueError(f"max_connections must be positive, got {max_connections}")
    reason = _unsupported(lm)
    if reason is not None:
        raise RuntimeError(
            f"cannot set the LM's connection pool to {max_connections} ({reason}); "
            f"set LM_MAX_CONNECTIONS={DEFAULT_MAX_CONNECTIONS} to keep DSPy's default, "
            "or update runtime/lm_pool.py for this DSPy"
        )
    lm._engine_store = PooledEngines(max_connections)
    return lm
