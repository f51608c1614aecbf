"""An experiment, never a deployment: ``asyncio.to_thread`` runs its function inline.

DSPy sends a few calls of every LM call to a worker thread (``asyncio.to_thread``:
the adapter's capability planning, the stream guard, the pricing, the cache's
store). Each is a hand-over of the GIL to a worker and back, and a wake-up of
the event loop through its self-pipe. A variant with the ``inline-threads``
option (:mod:`bench.ab`) puts this folder on ``PYTHONPATH``, so Python imports
this module at start-up and those calls run on the event loop's thread instead:
what is left is what the thread hops cost. It would block the loop on a slow
call (a LiteLLM lookup, a disk cache), which is why it is only an experiment.
"""

import asyncio
from collections.abc import Callable
from typing import Any


async def _inline(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    return func(*args, **kwargs)


asyncio.to_thread = _inline
