"""The rewards that BestOfN programs score their attempts with: yours to write.

Written once by dspy-forge and never overwritten (like tools/ and metrics.py):
each function gets the request's inputs and one attempt's prediction, and
returns a score. The first attempt scoring at least the program's threshold is
the answer; when none does, the highest score wins. A reward runs on the
service's event loop, once per attempt, so keep it quick and offline; one that
raises fails only its attempt.
"""

from typing import Any

import dspy


def headline_reward(args: dict[str, Any], prediction: dspy.Prediction) -> float:
    """Score one attempt; replace this check that every output is filled in."""
    return float(all(value not in (None, "") for value in prediction.values()))
