"""DSPy signatures of the service's programs, generated from the spec."""

import dspy


class AnswerQuestion(dspy.Signature):
    """Answer the question with a short factual answer."""

    question: str = dspy.InputField(
        desc="The question to answer.",
    )
    answer: str = dspy.OutputField(
        desc="A short answer, one or two sentences.",
    )
