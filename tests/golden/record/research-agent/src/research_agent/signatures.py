"""DSPy signatures of the service's programs, generated from the spec."""

import dspy


class AgentSignature(dspy.Signature):
    question: str = dspy.InputField()
    answer: str = dspy.OutputField()
