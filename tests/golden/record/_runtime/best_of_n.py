"""Best of N: run one module up to N times and keep the attempt a reward scores best.

DSPy's ``dspy.BestOfN`` (3.4) cannot be served as it is: it defines only a sync
``forward`` (the service runs every program natively async, with ``acall``), it
runs each attempt on a ``deepcopy()`` of the wrapped module (so a stream
listener or a callback bound to the served predictor never sees it), and it
counts failures down in ``self.fail_count`` on the shared module (so one
request's failures change the next one's). This module keeps DSPy's rule and
drops those three:

- each attempt calls the one wrapped module with
  ``config={"rollout_id": attempt, "temperature": 1.0}`` (Predict takes ``config``
  from its call's arguments; ChainOfThought passes them on), so the attempts are
  distinct LM calls and distinct cache entries, and every attempt shows in the
  status events;
- the first attempt whose reward reaches ``threshold`` is the answer; when none
  does, the one with the highest reward (the first of equals);
- an attempt that raises (the LM call, the parsing of its answer, or the reward)
  counts as a failure and the next one runs; the run fails only when every
  attempt failed, with the last attempt's error. ``asyncio.CancelledError`` is
  not an ``Exception``, so a cancelled run stops at once;
- nothing is written on the module: concurrent requests share it safely.

``aforward`` serves requests; ``forward`` is what ``dspy.Evaluate`` and the
optimizers call (``python -m <package> eval|optimize``). Both apply
:meth:`BestOfN._choose`. As in DSPy, each attempt runs with a trace of its own,
and only the chosen attempt's trace joins the caller's, so an optimizer learns
from the answer that was kept.
"""

import functools
from collections.abc import Callable
from typing import Any

import dspy

Reward = Callable[[dict[str, Any], dspy.Prediction], float]


class _Best:
    """The running choice of one call: the best attempt so far, and the last failure."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.prediction: dspy.Prediction | None = None
        self.trace: list[Any] = []
        self.reward = float("-inf")
        self.error: Exception | None = None

    def offer(self, prediction: dspy.Prediction, reward: float, trace: list[Any]) -> bool:
        """Keep the attempt if it is the best so far; whether it ends the search."""
        if self.prediction is None or reward > self.reward:
            self.prediction, self.reward, self.trace = prediction, reward, trace
        return reward >= self.threshold

    def result(self) -> dspy.Prediction:
        """The chosen prediction, its trace added to the caller's; or the last error."""
        if self.prediction is None:
            assert self.error is not None  # attempts >= 1, and each one failed
            raise self.error
        trace, most = dspy.settings.trace, dspy.settings.max_trace_size
        if trace is not None and most > 0:  # as Predict adds to it: the newest ``most``
            trace.extend(self.trace)
            del trace[: max(0, len(trace) - most)]
        return self.prediction


class BestOfN(dspy.Module):
    """Run ``module`` up to ``attempts`` times; return the attempt ``reward`` scores best.

    ``reward(args, prediction) -> float`` gets the call's inputs and one attempt's
    prediction (DSPy's ``reward_fn``). It runs on the event loop's thread while
    the service serves, so it should be quick and not block on I/O.
    """

    def __init__(
        self, module: dspy.Module, *, attempts: int, reward: Reward, threshold: float
    ) -> None:
        super().__init__()
        if attempts < 1:
            raise ValueError("BestOfN needs at least one attempt")
        self.module = module
        self.attempts = attempts
        self.threshold = threshold
        # A partial, not the function: a reward that is itself a dspy.Module (an LM
        # judge) would otherwise become one of this program's predictors, saved,
        # loaded and optimized with it.
        self._reward = functools.partial(reward)

    def _config(self, attempt: int) -> dict[str, Any]:
        """The LM settings of one attempt: its own cache entry, sampled (DSPy's rule)."""
        return {"rollout_id": attempt, "temperature": 1.0}

    def _score(self, kwargs: dict[str, Any], prediction: dspy.Prediction) -> float:
        # A copy: a reward that edits its args must not change the next attempt's inputs.
        return float(self._reward(dict(kwargs), prediction))

    async def aforward(self, **kwargs: Any) -> dspy.Prediction:
        """Serve one request: the attempts run one after another, each awaited."""
        best = _Best(self.threshold)
        for attempt in range(self.attempts):
            try:
                with dspy.context(trace=[]):
                    prediction = await self.module.acall(**kwargs, config=self._config(attempt))
                    trace = list(dspy.settings.trace)
                reward = self._score(kwargs, prediction)
            except Exception as exc:  # one failed attempt; the next may succeed
                best.error = exc
                continue
            if best.offer(prediction, reward, trace):
                break
        return best.result()

    def forward(self, **kwargs: Any) -> dspy.Prediction:
        """The same choice, synchronously: for ``dspy.Evaluate`` and the optimizers."""
        best = _Best(self.threshold)
        for attempt in range(self.attempts):
            try:
                with dspy.context(trace=[]):
                    prediction = self.module(**kwargs, config=self._config(attempt))
                    trace = list(dspy.settings.trace)
                reward = self._score(kwargs, prediction)
            except Exception as exc:  # one failed attempt; the next may succeed
                best.error = exc
                continue
            if best.offer(prediction, reward, trace):
                break
        return best.result()
