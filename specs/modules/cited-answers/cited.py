"""The cited program's module, as its user wrote it: retrieve, then answer citing.

The stub dspy-forge generated held one ChainOfThought named ``answer``; this
body keeps that predictor (the spec's listener names ``answer.predict``) and
puts a retrieval step before it: the ``search`` tool, called as DSPy calls a
tool (so the spec's tool status messages are sent), its passages numbered for
the answer to cite.
"""

from typing import Any

import dspy


class RetrieveThenAnswer(dspy.Module):
    """Search the knowledge base for the question, then answer from the numbered passages."""

    def __init__(self, signature: type[dspy.Signature], tools: list[dspy.Tool]) -> None:
        super().__init__()
        self.search = {tool.name: tool for tool in tools}["search"]
        with_passages = signature.prepend(
            "passages", dspy.InputField(desc="Numbered passages, [1] first."), type_=list[str]
        )
        self.answer = dspy.ChainOfThought(with_passages)

    async def aforward(self, **inputs: Any) -> dspy.Prediction:
        found = await self.search.acall(query=inputs["question"])
        passages = [f"[{number}] {text}" for number, text in enumerate(found, start=1)]
        prediction: dspy.Prediction = await self.answer.acall(passages=passages, **inputs)
        return prediction
