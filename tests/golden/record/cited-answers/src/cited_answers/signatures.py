"""DSPy signatures of the service's programs, generated from the spec."""

import dspy


class AnswerWithCitations(dspy.Signature):
    """Answer the question from the numbered passages only, citing each passage you use by its number in brackets, as [1]."""

    question: str = dspy.InputField(
        desc="The question to answer.",
    )
    answer: str = dspy.OutputField(
        desc="The answer, with a bracketed citation after each claim.",
    )
    citations: list[int] = dspy.OutputField(
        desc="The numbers of the passages the answer cites.",
    )
