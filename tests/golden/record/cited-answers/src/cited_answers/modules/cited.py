"""Your DSPy module: the spec gives the signature and tools, the body is yours.

The service builds each class once at start-up, as ``Class(signature, tools)``,
and runs it with ``acall`` (so write ``aforward``). Keep every predictor as an
attribute: a listener in the spec names it as ``named_predictors()`` does (the
default body's is ``answer.predict``), and the service checks those names when it
starts. This file is yours: ``dspy-forge generate`` and ``copier update`` write it
once and never overwrite it.
"""

from typing import Any

import dspy


class RetrieveThenAnswer(dspy.Module):
    """One ChainOfThought over the spec's signature, until you write your own steps."""

    def __init__(self, signature: type[dspy.Signature], tools: list[dspy.Tool]) -> None:
        super().__init__()
        self.tools = {tool.name: tool for tool in tools}  # call as await tool.acall(...)
        self.answer = dspy.ChainOfThought(signature)

    async def aforward(self, **inputs: Any) -> dspy.Prediction:
        prediction: dspy.Prediction = await self.answer.acall(**inputs)
        return prediction

    def forward(self, **inputs: Any) -> dspy.Prediction:
        prediction: dspy.Prediction = self.answer(**inputs)
        return prediction
